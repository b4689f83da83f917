import Core
import Foundation
import Hummingbird
import Logging
import PostgresNIO

/// `GET /api/analytics/metrics`: a metric's series and total, from rollups only.
struct AnalyticsRoutes: Sendable {
    let client: PostgresClient

    func register(on group: RouterGroup<APIRequestContext>) {
        group.get("analytics/metrics", use: series)
    }

    @Sendable func series(_ request: Request, context: APIRequestContext) async throws -> Response {
        let principal = try context.requirePrincipal(.read)
        let query = request.uri.queryParameters
        guard let id = query["metric"].flatMap({ UUID(uuidString: String($0)) }) else {
            throw AppError(.invalidField, "'metric' must be a metric id")
        }
        let window = try SeriesParameters.parse(
            start: query["start"].map(String.init), end: query["end"].map(String.init),
            granularity: query["granularity"].map(String.init), tz: query["tz"].map(String.init),
            top: query["top"].map(String.init))
        let reader = RollupReader(client: client)
        guard let metric = try await reader.metric(orgID: principal.orgID, id: id, logger: context.logger) else {
            throw AppError(.notFound, "no such metric")
        }
        let series = try await reader.series(
            metric: metric, start: window.start, end: window.end, granularity: window.granularity,
            timeZone: window.timeZone, topGroups: window.top, logger: context.logger)
        return JSONBody.response(jsonBytes: SeriesJSON.object(series))
    }
}

/// The query parameters of a series request, validated.
struct SeriesParameters {
    var start: Date
    var end: Date
    var granularity: Granularity
    var timeZone: TimeZone
    var top: Int

    static func parse(start: String?, end: String?, granularity: String?, tz: String?, top: String?) throws -> SeriesParameters {
        let now = Date()
        var endDate = now
        if let end {
            guard let date = Timestamps.parse(end) else {
                throw AppError(.invalidField, "'end' must be an ISO 8601 time with an offset")
            }
            endDate = date
        }
        var startDate = endDate.addingTimeInterval(-86400)
        if let start {
            guard let date = Timestamps.parse(start) else {
                throw AppError(.invalidField, "'start' must be an ISO 8601 time with an offset")
            }
            startDate = date
        }
        guard startDate < endDate else { throw AppError(.invalidField, "'start' must be before 'end'") }
        let granularityValue = try granularity.map { name -> Granularity in
            guard let value = Granularity(rawValue: name) else {
                throw AppError(.invalidField, "'granularity' must be minute, hour or day")
            }
            return value
        } ?? .hour
        let zoneName = tz ?? "UTC"
        guard let zone = TimeZone(identifier: zoneName) else {
            throw AppError(.invalidField, "'tz' must be an IANA time zone such as Europe/Berlin")
        }
        var topValue = 10
        if let top {
            guard let value = Int(top), (0...100).contains(value) else {
                throw AppError(.invalidField, "'top' must be an integer from 0 to 100")
            }
            topValue = value
        }
        return SeriesParameters(start: startDate, end: endDate, granularity: granularityValue, timeZone: zone, top: topValue)
    }
}

