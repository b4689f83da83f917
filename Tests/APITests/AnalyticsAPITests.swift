@testable import API
import Core
import Foundation
import Hummingbird
import HummingbirdTesting
@testable import Jobs
import Logging
import NIOCore
import PostgresNIO
import TestSupport
import Testing

func send(
    _ http: some TestClientProtocol, _ method: HTTPRequest.Method, _ uri: String, key: String?, json: String? = nil
) async throws -> (HTTPResponse.Status, [String: Any]) {
    var headers: HTTPFields = [.contentType: "application/json"]
    if let key { headers[.authorization] = "Bearer \(key)" }
    return try await http.execute(
        uri: uri, method: method, headers: headers, body: json.map { ByteBuffer(string: $0) }
    ) { response in
        let object = (try? JSONSerialization.jsonObject(with: Data(buffer: response.body))) as? [String: Any] ?? [:]
        return (response.status, object)
    }
}

/// Runs fresh rollups until every committed event is folded.
func drainRollups(_ client: PostgresClient) async throws {
    let logger = Logger(label: "test.rollups")
    while true {
        if case .folded(let watermark, _, _) = try await RollupJob.runOnce(client: client, logger: logger),
            try await !RollupJob.hasRows(atOrAbove: watermark, client: client, logger: logger)
        {
            return
        }
        try await Task.sleep(for: .milliseconds(10))
    }
}

@Suite struct AnalyticsAPITests {
    static let logger = Logger(label: "test.analytics")

    @Test func metricDefinitionsAreValidatedAndScopedByOrganization() async throws {
        try await withTestDatabase { client, _ in
            let a = try await IngestionFixture.make(client)
            let b = try await IngestionFixture.make(client)
            let app = Application(router: APIServer.makeRouter(.init(client: client)))
            try await app.test(.router) { http in
                // Built-ins exist for every organization.
                let (listStatus, list) = try await send(http, .get, "/api/metrics", key: a.adminKey)
                #expect(listStatus == .ok)
                let builtins = (list["metrics"] as? [[String: Any]])?.compactMap { $0["builtin"] as? String } ?? []
                #expect(Set(builtins).isSuperset(of: ["events_by_name", "unique_users", "api_requests", "api_latency_p95"]))

                let bad: [(String, String)] = [
                    (#"{"name": "x", "event_name": "e", "aggregation": "median"}"#, "aggregation"),
                    (#"{"name": "x", "event_name": "e", "aggregation": "sum"}"#, "property"),
                    (#"{"name": "", "event_name": "e", "aggregation": "count"}"#, "name"),
                    (#"{"name": "x", "aggregation": "count"}"#, "event_name"),
                    (#"{"name": "x", "event_name": "e", "aggregation": "count", "filters": [{"property": "p", "op": "like", "value": 1}]}"#, "op"),
                    (#"{"name": "x", "event_name": "e", "aggregation": "count", "filters": [{"property": "p", "op": "in", "value": 3}]}"#, "value"),
                    (#"{"name": "x", "event_name": "e", "aggregation": "count", "filters": {}}"#, "filters"),
                    (#"{"name": "x", "event_name": "e", "aggregation": "error_rate_4xx", "property": "status"}"#, "aggregation"),
                ]
                for (json, field) in bad {
                    let (status, body) = try await send(http, .post, "/api/metrics", key: a.adminKey, json: json)
                    #expect(status == .unprocessableContent, "\(json)")
                    let message = (body["error"] as? [String: Any])?["message"] as? String ?? ""
                    #expect(message.contains(field), "\(message)")
                }
                let (malformed, _) = try await send(http, .post, "/api/metrics", key: a.adminKey, json: "{")
                #expect(malformed == .badRequest)

                let (created, metric) = try await send(
                    http, .post, "/api/metrics", key: a.adminKey,
                    json: #"{"name": "Revenue", "event_name": "purchase", "aggregation": "sum", "property": "amount", "filters": [{"property": "plan", "op": "eq", "value": "pro"}], "group_by": "country"}"#)
                #expect(created == .created)
                let id = try #require(metric["id"] as? String)
                #expect(metric["group_by"] as? String == "country")
                #expect((metric["filters"] as? [[String: Any]])?.first?["op"] as? String == "eq")

                // Another organization sees none of it.
                #expect(try await send(http, .get, "/api/metrics/\(id)", key: b.adminKey).0 == .notFound)
                #expect(try await send(http, .delete, "/api/metrics/\(id)", key: b.adminKey).0 == .notFound)
                #expect(
                    try await send(
                        http, .put, "/api/metrics/\(id)", key: b.adminKey,
                        json: #"{"name": "x", "event_name": "e", "aggregation": "count"}"#
                    ).0 == .notFound)

                // Redefining starts a new backfill (version 2); renaming alone does not.
                let (renamed, _) = try await send(
                    http, .put, "/api/metrics/\(id)", key: a.adminKey,
                    json: #"{"name": "Revenue (pro)", "event_name": "purchase", "aggregation": "sum", "property": "amount", "filters": [{"property": "plan", "op": "eq", "value": "pro"}], "group_by": "country"}"#)
                #expect(renamed == .ok)
                #expect(try await client.scalar("SELECT version FROM metrics WHERE id = \(UUID(uuidString: id)!)", as: Int32.self) == 1)
                let (changed, _) = try await send(
                    http, .put, "/api/metrics/\(id)", key: a.adminKey,
                    json: #"{"name": "Revenue", "event_name": "purchase", "aggregation": "avg", "property": "amount"}"#)
                #expect(changed == .ok)
                #expect(try await client.scalar("SELECT version FROM metrics WHERE id = \(UUID(uuidString: id)!)", as: Int32.self) == 2)
                #expect(
                    try await client.scalar(
                        "SELECT count(*)::int FROM jobs WHERE kind = 'analytics.backfill' AND org_id = \(a.orgID)", as: Int.self) == 2)

                // Built-ins are read-only.
                let builtinID = try await client.scalar(
                    "SELECT id FROM metrics WHERE org_id = \(a.orgID) AND builtin = 'unique_users'", as: UUID.self)!
                #expect(try await send(http, .delete, "/api/metrics/\(builtinID)", key: a.adminKey).0 == .conflict)

                #expect(try await send(http, .delete, "/api/metrics/\(id)", key: a.adminKey).0 == .noContent)
                #expect(try await send(http, .get, "/api/metrics/\(id)", key: a.adminKey).0 == .notFound)
            }
        }
    }

    @Test func analyticsSeriesComeFromRollups() async throws {
        try await withTestDatabase { client, _ in
            let fixture = try await IngestionFixture.make(client, tier: .enterprise)
            let other = try await IngestionFixture.make(client)
            let app = Application(router: APIServer.makeRouter(.init(client: client)))
            try await app.test(.router) { http in
                let (_, metric) = try await send(
                    http, .post, "/api/metrics", key: fixture.adminKey,
                    json: #"{"name": "Latency p95", "event_name": "api_call", "aggregation": "p95", "property": "ms", "group_by": "route"}"#)
                let id = try #require(metric["id"] as? String)
                // The new metric's backfill finds nothing (no events yet) and finishes.
                try await BackfillJob.runToCompletion(
                    .init(orgID: fixture.orgID, metricID: UUID(uuidString: id)!, version: 1), client: client,
                    logger: Self.logger)

                let now = Date()
                var events: [String] = []
                for i in 0..<300 {
                    let route = ["/a", "/b", "/c"][i % 3]
                    let time = Timestamps.format(now.addingTimeInterval(-Double(i) * 60))
                    events.append(#"{"name": "api_call", "properties": {"ms": \#(i + 1), "route": "\#(route)"}, "user_id": "u\#(i % 7)", "timestamp": "\#(time)"}"#)
                    events.append(
                        #"{"name": "api_request", "properties": {"endpoint": "\#(route)", "method": "GET", "status": \#([200, 404, 500, 201][i % 4]), "duration_ms": \#(i % 50 + 1)}, "timestamp": "\#(time)"}"#)
                }
                let (status, body) = try await post(
                    http, "/api/events/batch", key: fixture.adminKey, json: #"{"events": [\#(events.joined(separator: ","))]}"#)
                #expect(status == .ok)
                #expect(body["accepted"] as? Int == 600)
                try await drainRollups(client)

                let start = Timestamps.format(now.addingTimeInterval(-6 * 3600))
                let end = Timestamps.format(now.addingTimeInterval(60))
                let query = "start=\(start)&end=\(end)".replacingOccurrences(of: "+", with: "%2B")
                let (seriesStatus, series) = try await send(
                    http, .get, "/api/analytics/metrics?metric=\(id)&\(query)&granularity=hour&top=2", key: fixture.adminKey)
                #expect(seriesStatus == .ok)
                let total = try #require(series["total"] as? Double)
                // p95 of 1...300 at rank floor(0.95 * 299) = 284 → value 285, within 1 %.
                #expect(abs(total - 285) <= 285 * 0.01)
                let points = series["points"] as? [[String: Any]] ?? []
                #expect(points.count >= 6 && points.count <= 8)
                let groups = series["groups"] as? [String: Any] ?? [:]
                #expect(groups.count == 3)
                #expect(groups["other"] != nil)
                // "other" is the one route outside the top two: its p95 and its points are that route's own.
                let ranked = groups.filter { $0.key != "other" }.map(\.key)
                let rest = try #require(Set(["/a", "/b", "/c"]).subtracting(ranked).first)
                let (_, single) = try await send(
                    http, .get, "/api/analytics/metrics?metric=\(id)&\(query)&granularity=hour&top=3", key: fixture.adminKey)
                let restGroup = (single["groups"] as? [String: Any])?[rest] as? [String: Any]
                let otherGroup = groups["other"] as? [String: Any]
                #expect(restGroup?["total"] as? Double != nil)
                #expect(otherGroup?["total"] as? Double == restGroup?["total"] as? Double)
                let otherValues = (otherGroup?["points"] as? [[String: Any]])?.map { $0["value"] as? Double }
                let restValues = (restGroup?["points"] as? [[String: Any]])?.map { $0["value"] as? Double }
                #expect(otherValues == restValues)

                // Built-in API analytics: request counts and error rates per endpoint.
                let builtins = try await client.query(
                    "SELECT builtin, id FROM metrics WHERE org_id = \(fixture.orgID) AND builtin IS NOT NULL",
                    logger: Self.logger
                ).collect().reduce(into: [String: UUID]()) { result, row in
                    let (name, id) = try! row.decode((String, UUID).self)
                    result[name] = id
                }
                let (_, requests) = try await send(
                    http, .get, "/api/analytics/metrics?metric=\(builtins["api_requests"]!)&\(query)", key: fixture.adminKey)
                #expect(requests["total"] as? Double == 300)
                let (_, rate5xx) = try await send(
                    http, .get, "/api/analytics/metrics?metric=\(builtins["api_error_rate_5xx"]!)&\(query)", key: fixture.adminKey)
                #expect(rate5xx["total"] as? Double == 0.25)
                let (_, rate4xx) = try await send(
                    http, .get, "/api/analytics/metrics?metric=\(builtins["api_error_rate_4xx"]!)&\(query)", key: fixture.adminKey)
                #expect(rate4xx["total"] as? Double == 0.25)
                let (_, byName) = try await send(
                    http, .get, "/api/analytics/metrics?metric=\(builtins["events_by_name"]!)&\(query)", key: fixture.adminKey)
                #expect(((byName["groups"] as? [String: Any])?["api_call"] as? [String: Any])?["total"] as? Double == 300)
                let (_, uniques) = try await send(
                    http, .get, "/api/analytics/metrics?metric=\(builtins["unique_users"]!)&\(query)", key: fixture.adminKey)
                #expect(uniques["total"] as? Double == 7)

                // Bad parameters: clear 422s; unknown or foreign metric: 404.
                for bad in ["granularity=week", "tz=Mars/Base", "start=yesterday", "granularity=minute&start=2020-01-01T00:00:00Z"] {
                    let (status, _) = try await send(
                        http, .get, "/api/analytics/metrics?metric=\(id)&\(bad)", key: fixture.adminKey)
                    #expect(status == .unprocessableContent, "\(bad)")
                }
                #expect(try await send(http, .get, "/api/analytics/metrics?metric=\(id)", key: other.adminKey).0 == .notFound)
                #expect(try await send(http, .get, "/api/analytics/metrics?metric=nope", key: fixture.adminKey).0 == .unprocessableContent)
            }
        }
    }

    @Test func dashboardsValidateWidgetsAndServeRollupData() async throws {
        try await withTestDatabase { client, _ in
            let fixture = try await IngestionFixture.make(client)
            let other = try await IngestionFixture.make(client)
            let app = Application(router: APIServer.makeRouter(.init(client: client)))
            try await app.test(.router) { http in
                let (_, metric) = try await send(
                    http, .post, "/api/metrics", key: fixture.adminKey,
                    json: #"{"name": "Signups", "event_name": "signup", "aggregation": "count"}"#)
                let metricID = try #require(metric["id"] as? String)
                let foreign = try await client.scalar(
                    "SELECT id FROM metrics WHERE org_id = \(other.orgID) AND builtin = 'unique_users'", as: UUID.self)!

                func widget(_ fields: String) -> String {
                    #"{"name": "D", "config": {"widgets": [\#(fields)]}}"#
                }
                let invalid = [
                    widget(#"{"id": "w", "metric_id": "\#(foreign)", "chart": "line"}"#),
                    widget(#"{"id": "w", "metric_id": "\#(metricID)", "chart": "pie"}"#),
                    widget(#"{"id": "w", "metric_id": "\#(metricID)", "chart": "line", "range": "last_year"}"#),
                    widget(#"{"id": "w", "metric_id": "\#(metricID)", "chart": "line", "range": {"start": "2026-02-01T00:00:00Z", "end": "2026-01-01T00:00:00Z"}}"#),
                    widget(#"{"id": "w", "metric_id": "\#(metricID)", "chart": "line", "range": "last_30d", "granularity": "minute"}"#),
                    widget(#"{"id": "w", "metric_id": "\#(metricID)", "chart": "kpi"}, {"id": "w", "metric_id": "\#(metricID)", "chart": "kpi"}"#),
                    #"{"config": {}}"#,
                    #"{"name": "D", "tags": "x"}"#,
                ]
                for json in invalid {
                    let (status, _) = try await send(http, .post, "/api/dashboards", key: fixture.adminKey, json: json)
                    #expect(status == .unprocessableContent, "\(json)")
                }

                let (created, dashboard) = try await send(
                    http, .post, "/api/dashboards", key: fixture.adminKey,
                    json: #"{"name": "Growth", "description": "signups", "is_public": false, "tags": ["growth"], "config": {"layout": "grid", "widgets": [{"id": "kpi", "title": "Signups", "metric_id": "\#(metricID)", "chart": "kpi", "range": "last_7d", "granularity": "day"}, {"id": "line", "metric_id": "\#(metricID)", "chart": "line", "range": "last_24h"}]}}"#)
                #expect(created == .created)
                let id = try #require(dashboard["id"] as? String)
                #expect((dashboard["config"] as? [String: Any])?["layout"] as? String == "grid")
                #expect(try await send(http, .get, "/api/dashboards/\(id)", key: other.adminKey).0 == .notFound)
                #expect(try await send(http, .get, "/api/dashboards/\(id)/data", key: other.adminKey).0 == .notFound)

                let (_, ingest) = try await post(
                    http, "/api/events/batch", key: fixture.adminKey,
                    json: #"{"events": [{"name": "signup"}, {"name": "signup"}, {"name": "signup"}]}"#)
                #expect(ingest["accepted"] as? Int == 3)
                try await drainRollups(client)

                let (dataStatus, data) = try await send(http, .get, "/api/dashboards/\(id)/data", key: fixture.adminKey)
                #expect(dataStatus == .ok)
                let widgets = data["widgets"] as? [[String: Any]] ?? []
                #expect(widgets.map { $0["id"] as? String } == ["kpi", "line"])
                #expect(widgets.first?["total"] as? Double == 3)
                #expect((widgets.first?["points"] as? [Any])?.count ?? 0 >= 7)
                #expect(widgets.last?["total"] as? Double == 3)

                // A deleted metric leaves the widget with an error, not a failed dashboard.
                #expect(try await send(http, .delete, "/api/metrics/\(metricID)", key: fixture.adminKey).0 == .noContent)
                let (_, after) = try await send(http, .get, "/api/dashboards/\(id)/data", key: fixture.adminKey)
                let error = ((after["widgets"] as? [[String: Any]])?.first?["error"] as? [String: Any])?["code"] as? String
                #expect(error == "metric_not_found")

                let (updated, _) = try await send(
                    http, .put, "/api/dashboards/\(id)", key: fixture.adminKey, json: #"{"name": "Renamed"}"#)
                #expect(updated == .ok)
                let (_, listed) = try await send(http, .get, "/api/dashboards", key: fixture.adminKey)
                #expect((listed["dashboards"] as? [[String: Any]])?.first?["name"] as? String == "Renamed")
                #expect(try await send(http, .delete, "/api/dashboards/\(id)", key: other.adminKey).0 == .notFound)
                #expect(try await send(http, .delete, "/api/dashboards/\(id)", key: fixture.adminKey).0 == .noContent)
            }
        }
    }

    /// Snapshot on connect, a push after a rollup commits, refusals before the upgrade.
    @Test func liveDashboardReceivesSnapshotAndPushes() async throws {
        try await withTestDatabase { client, url in
            let fixture = try await IngestionFixture.make(client)
            let other = try await IngestionFixture.make(client)
            let dependencies = APIServer.Dependencies(client: client, listenConfiguration: url.connectionConfiguration)
            let app = APIServer.makeApplication(dependencies, host: "127.0.0.1", port: 0, logger: Self.logger)
            try await app.test(.live) { http in
                let port = try #require(http.port)
                let (_, metric) = try await send(
                    http, .post, "/api/metrics", key: fixture.adminKey,
                    json: #"{"name": "Clicks", "event_name": "click", "aggregation": "count"}"#)
                let metricID = try #require(metric["id"] as? String)
                let (_, dashboard) = try await send(
                    http, .post, "/api/dashboards", key: fixture.adminKey,
                    json: #"{"name": "Live", "config": {"widgets": [{"id": "clicks", "metric_id": "\#(metricID)", "chart": "kpi"}]}}"#)
                let id = try #require(dashboard["id"] as? String)

                let socket = LiveSocket(url: "ws://127.0.0.1:\(port)/ws/dashboard/\(id)?token=\(fixture.adminKey)")
                defer { socket.close() }
                let snapshot = try await socket.next()
                #expect(snapshot["type"] as? String == "snapshot")
                #expect((snapshot["widgets"] as? [[String: Any]])?.first?["total"] as? Double == 0)
                // The header works as well as the query parameter.
                let viaHeader = LiveSocket(
                    url: "ws://127.0.0.1:\(port)/ws/dashboard/\(id)", headers: [.authorization: "Bearer \(fixture.adminKey)"])
                defer { viaHeader.close() }
                #expect(try await viaHeader.next()["type"] as? String == "snapshot")

                _ = try await post(http, "/api/events/batch", key: fixture.adminKey, json: #"{"events": [{"name": "click"}, {"name": "click"}]}"#)
                try await drainRollups(client)
                let update = try await socket.next { ($0["widgets"] as? [[String: Any]])?.first?["total"] as? Double == 2 }
                #expect(update["type"] as? String == "update")
                #expect(update["changed"] as? [String] == ["clicks"])
                _ = try await viaHeader.next { ($0["widgets"] as? [[String: Any]])?.first?["total"] as? Double == 2 }

                // Refused: no credentials, another organization's key, an unknown dashboard.
                for url in [
                    "ws://127.0.0.1:\(port)/ws/dashboard/\(id)",
                    "ws://127.0.0.1:\(port)/ws/dashboard/\(id)?token=\(other.adminKey)",
                    "ws://127.0.0.1:\(port)/ws/dashboard/\(UUID())?token=\(fixture.adminKey)",
                ] {
                    let refused = LiveSocket(url: url)
                    let ended = await refused.waitForEnd()
                    #expect(ended != nil && ended != "closed", "\(url): \(ended ?? "still open")")
                    #expect((try? await refused.next(timeout: .milliseconds(100))) == nil)
                }
                let (status, body) = try await send(http, .get, "/ws/dashboard/\(id)", key: other.adminKey)
                #expect(status == .notFound || status == .unauthorized, "\(body)")
            }
        }
    }
}
