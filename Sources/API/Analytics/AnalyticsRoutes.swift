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
        return JSONBody.response(jsonText: SeriesJSON.object(series).jsonText)
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

/// A series as JSON: `{"metric", "granularity", "total", "points": [{"t", "value"}], "groups": {…}}`.
enum SeriesJSON {
    static func object(_ series: MetricSeries, extra: [String: JSONValue] = [:]) -> JSONValue {
        let formatter = ISO8601DateFormatter()
        formatter.formatOptions = [.withInternetDateTime]
        // Day buckets start at local midnight: shown with the zone's offset. Others in UTC.
        formatter.timeZone = series.granularity == .day ? series.timeZone : TimeZone(identifier: "UTC")!
        func number(_ value: Double?) -> JSONValue {
            guard let value, value.isFinite else { return .null }
            return .number(value)
        }
        func points(_ points: [MetricSeries.Point]) -> JSONValue {
            .array(points.map { .object(["t": .string(formatter.string(from: $0.t)), "value": number($0.value)]) })
        }
        var groups: [String: JSONValue] = [:]
        for group in series.groups {
            groups[group.name] = .object(["total": number(group.total), "points": points(group.points)])
        }
        var object: [String: JSONValue] = [
            "metric": .string(series.metric.id.uuidString.lowercased()),
            "name": .string(series.metric.name),
            "aggregation": .string(series.metric.aggregation.rawValue),
            "granularity": .string(series.granularity.rawValue),
            "time_zone": .string(series.timeZone.identifier),
            "start": .string(formatter.string(from: series.start)),
            "end": .string(formatter.string(from: series.end)),
            "total": number(series.total),
            "points": points(series.points),
            "groups": .object(groups),
        ]
        for (key, value) in extra { object[key] = value }
        return .object(object)
    }
}
