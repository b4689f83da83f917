@testable import API
import Core
import Foundation
import Hummingbird
import HummingbirdTesting
@testable import Jobs
import Logging
import NIOCore
import PostgresNIO
import Scheduler
import TestSupport
import Testing

/// Asynchronous exports: 202 and a job, status, download from any node, expiry, failures.
@Suite struct ExportAPITests {
    static let logger = Logger(label: "test.exports")

    func download(_ http: some TestClientProtocol, _ id: String, key: String) async throws -> (HTTPResponse.Status, [UInt8], HTTPFields) {
        try await http.execute(
            uri: "/api/exports/\(id)/download", method: .get, headers: [.authorization: "Bearer \(key)"], body: nil
        ) { response in
            (response.status, Array(response.body.readableBytesView), response.headers)
        }
    }

    func runJob(_ client: PostgresClient, org: UUID, id: String) async throws -> JobOutcome {
        try await ExportJob(client: client).perform(
            .init(orgID: org, exportID: UUID(uuidString: id)!), logger: Self.logger)
    }

    @Test func eventsExportIsBuiltByAJobAndServedByAnyNode() async throws {
        try await withTestDatabase { client, _ in
            let fixture = try await IngestionFixture.make(client)
            let other = try await IngestionFixture.make(client)
            let nodeA = Application(router: APIServer.makeRouter(.init(client: client)))
            let nodeB = Application(router: APIServer.makeRouter(.init(client: client)))
            let now = Date()
            let start = Timestamps.format(now.addingTimeInterval(-3600)), end = Timestamps.format(now.addingTimeInterval(60))
            let id = try await nodeA.test(.router) { http -> String in
                let events = (0..<250).map { #"{"name": "\#($0 % 2 == 0 ? "view" : "=cmd()")", "properties": {"n": \#($0)}, "user_id": "-12.5"}"# }
                let (ingested, _) = try await post(
                    http, "/api/events/batch", key: fixture.adminKey, json: #"{"events": [\#(events.joined(separator: ","))]}"#)
                #expect(ingested == .ok)
                let (status, created) = try await send(
                    http, .post, "/api/exports", key: fixture.adminKey,
                    json: #"{"kind": "events", "format": "csv", "start": "\#(start)", "end": "\#(end)", "bom": true}"#)
                #expect(status == .accepted)
                #expect(created["status"] as? String == "pending")
                let id = try #require(created["id"] as? String)
                #expect(try await send(http, .get, "/api/exports/\(id)", key: fixture.adminKey).1["status"] as? String == "pending")
                let (early, _, _) = try await download(http, id, key: fixture.adminKey)
                #expect(early == .conflict)
                // The job was enqueued with the export.
                #expect(
                    try await client.scalar(
                        "SELECT count(*)::int FROM jobs WHERE kind = 'exports.generate' AND org_id = \(fixture.orgID)", as: Int.self) == 1)
                return id
            }
            #expect(try await runJob(client, org: fixture.orgID, id: id) == .success)
            // Running it again changes nothing (finished exports are left alone).
            #expect(try await runJob(client, org: fixture.orgID, id: id) == .success)

            try await nodeB.test(.router) { http in
                let (_, info) = try await send(http, .get, "/api/exports/\(id)", key: fixture.adminKey)
                #expect(info["status"] as? String == "completed")
                #expect(info["row_count"] as? Int == 250)
                let (status, bytes, headers) = try await download(http, id, key: fixture.adminKey)
                #expect(status == .ok)
                #expect(headers[.contentType] == "text/csv; charset=utf-8")
                #expect(info["size_bytes"] as? Int == bytes.count)
                #expect(Array(bytes.prefix(3)) == [0xEF, 0xBB, 0xBF])
                let text = String(decoding: bytes.dropFirst(3), as: UTF8.self)
                let lines = text.split(separator: "\r\n", omittingEmptySubsequences: true)
                #expect(lines.count == 251)
                #expect(lines.first == "id,name,timestamp,received_at,user_id,session_id,properties")
                #expect(text.contains(",'=cmd(),"))  // formula neutralised
                #expect(text.contains(",-12.5,"))  // a plain number stays a number

                // Another organization: not found, for status and download alike.
                #expect(try await send(http, .get, "/api/exports/\(id)", key: other.adminKey).0 == .notFound)
                #expect(try await download(http, id, key: other.adminKey).0 == .notFound)

                // Expiry: the file is deleted, the download says so.
                try await client.query(
                    "UPDATE exports SET expires_at = now() - interval '1 second' WHERE id = \(UUID(uuidString: id)!)",
                    logger: Self.logger)
                #expect(try await download(http, id, key: fixture.adminKey).0 == .gone)
                let swept = try await ExportExpiryJob.expire(client: client, logger: Self.logger)
                #expect(swept.expired == 1)
                #expect(try await client.scalar("SELECT count(*)::int FROM export_chunks", as: Int.self) == 0)
                #expect(try await send(http, .get, "/api/exports/\(id)", key: fixture.adminKey).1["status"] as? String == "expired")
            }
        }
    }

    @Test func metricAndDashboardExportsAsPDFJSONAndCSV() async throws {
        try await withTestDatabase { client, _ in
            let fixture = try await IngestionFixture.make(client)
            try await client.query(
                """
                UPDATE organizations SET custom_branding = '{"company_name": "Zebra Analytics Ltd", "primary_color": "#123456"}'
                WHERE id = \(fixture.orgID)
                """, logger: Self.logger)
            let app = Application(router: APIServer.makeRouter(.init(client: client)))
            try await app.test(.router) { http in
                let (_, metric) = try await send(
                    http, .post, "/api/metrics", key: fixture.adminKey,
                    json: #"{"name": "Checkout revenue", "event_name": "buy", "aggregation": "sum", "property": "amount", "group_by": "plan"}"#)
                let metricID = try #require(metric["id"] as? String)
                let (_, dashboard) = try await send(
                    http, .post, "/api/dashboards", key: fixture.adminKey,
                    json: #"{"name": "Sales", "config": {"widgets": [{"id": "rev", "title": "Revenue", "metric_id": "\#(metricID)", "chart": "bar"}, {"id": "kpi", "metric_id": "\#(metricID)", "chart": "kpi"}]}}"#)
                let dashboardID = try #require(dashboard["id"] as? String)
                _ = try await post(
                    http, "/api/events/batch", key: fixture.adminKey,
                    json: #"{"events": [{"name": "buy", "properties": {"amount": 40, "plan": "pro"}}, {"name": "buy", "properties": {"amount": 2.5, "plan": "free"}}]}"#)
                try await drainRollups(client)
                let now = Date()
                let range = #""start": "\#(Timestamps.format(now.addingTimeInterval(-7200)))", "end": "\#(Timestamps.format(now.addingTimeInterval(3600)))""#

                var results: [String: [UInt8]] = [:]
                for (name, json) in [
                    ("metric.pdf", #"{"kind": "metric", "format": "pdf", "metric_id": "\#(metricID)", \#(range)}"#),
                    ("metric.csv", #"{"kind": "metric", "format": "csv", "metric_id": "\#(metricID)", \#(range)}"#),
                    ("dashboard.json", #"{"kind": "dashboard", "format": "json", "dashboard_id": "\#(dashboardID)"}"#),
                    ("dashboard.pdf", #"{"kind": "dashboard", "format": "pdf", "dashboard_id": "\#(dashboardID)"}"#),
                ] {
                    let (status, created) = try await send(http, .post, "/api/exports", key: fixture.adminKey, json: json)
                    #expect(status == .accepted, "\(name)")
                    let id = try #require(created["id"] as? String)
                    #expect(try await runJob(client, org: fixture.orgID, id: id) == .success)
                    let (downloaded, bytes, _) = try await download(http, id, key: fixture.adminKey)
                    #expect(downloaded == .ok, "\(name)")
                    results[name] = bytes
                }
                for name in ["metric.pdf", "dashboard.pdf"] {
                    let path = "/tmp/aptest-\(UUID().uuidString.prefix(8)).pdf"
                    FileManager.default.createFile(atPath: path, contents: Data(results[name] ?? []))
                    defer { try? FileManager.default.removeItem(atPath: path) }
                    #expect(try ProcessRunner.run("/usr/bin/qpdf", ["--check", path]).status == 0, "\(name)")
                    let text = try ProcessRunner.run("/usr/bin/pdftotext", [path, "-"]).output
                    #expect(text.contains("Zebra Analytics Ltd"), "\(name)")
                    #expect(text.contains("42.5"), "\(name): \(text.prefix(400))")
                }
                let csv = String(decoding: results["metric.csv"] ?? [], as: UTF8.self)
                #expect(csv.hasPrefix("t,value,pro,free\r\n"))
                #expect(csv.contains(",42.5,40,2.5\r\n"))
                let json = try JSONSerialization.jsonObject(with: Data(results["dashboard.json"] ?? [])) as? [String: Any]
                let widgets = json?["widgets"] as? [[String: Any]] ?? []
                #expect(widgets.map { $0["id"] as? String } == ["rev", "kpi"])
                #expect(widgets.first?["total"] as? Double == 42.5)
            }
        }
    }

    @Test func badRequestsAndFailuresAreReported() async throws {
        try await withTestDatabase { client, _ in
            let fixture = try await IngestionFixture.make(client)
            let other = try await IngestionFixture.make(client)
            let app = Application(router: APIServer.makeRouter(.init(client: client)))
            try await app.test(.router) { http in
                let foreignMetric = try await client.scalar(
                    "SELECT id FROM metrics WHERE org_id = \(other.orgID) AND builtin = 'unique_users'", as: UUID.self)!
                let range = #""start": "2026-11-01T00:00:00Z", "end": "2026-11-02T00:00:00Z""#
                let invalid = [
                    #"{"kind": "logs", "format": "csv", \#(range)}"#,
                    #"{"kind": "events", "format": "xlsx", \#(range)}"#,
                    #"{"kind": "events", "format": "pdf", \#(range)}"#,
                    #"{"kind": "events", "format": "csv"}"#,
                    #"{"kind": "events", "format": "csv", "start": "2026-11-02T00:00:00Z", "end": "2026-11-01T00:00:00Z"}"#,
                    #"{"kind": "events", "format": "csv", \#(range), "tz": "Nowhere/City"}"#,
                    #"{"kind": "events", "format": "csv", \#(range), "ttl_hours": 0}"#,
                    #"{"kind": "metric", "format": "csv", \#(range)}"#,
                    #"{"kind": "metric", "format": "csv", "metric_id": "\#(foreignMetric)", "start": "2020-01-01T00:00:00Z", "end": "2026-01-01T00:00:00Z", "granularity": "minute"}"#,
                ]
                for json in invalid {
                    let (status, _) = try await send(http, .post, "/api/exports", key: fixture.adminKey, json: json)
                    #expect(status == .unprocessableContent, "\(json)")
                }
                let (foreign, _) = try await send(
                    http, .post, "/api/exports", key: fixture.adminKey,
                    json: #"{"kind": "metric", "format": "csv", "metric_id": "\#(foreignMetric)", \#(range)}"#)
                #expect(foreign == .notFound)
                #expect(try await send(http, .post, "/api/exports", key: fixture.adminKey, json: "{").0 == .badRequest)
                #expect(try await client.scalar("SELECT count(*)::int FROM exports", as: Int.self) == 0)

                // The metric is deleted before the job runs: failed, with the reason.
                let (_, metric) = try await send(
                    http, .post, "/api/metrics", key: fixture.adminKey,
                    json: #"{"name": "Gone", "event_name": "x", "aggregation": "count"}"#)
                let metricID = try #require(metric["id"] as? String)
                let (_, created) = try await send(
                    http, .post, "/api/exports", key: fixture.adminKey,
                    json: #"{"kind": "metric", "format": "json", "metric_id": "\#(metricID)", \#(range)}"#)
                let id = try #require(created["id"] as? String)
                #expect(try await send(http, .delete, "/api/metrics/\(metricID)", key: fixture.adminKey).0 == .noContent)
                let outcome = try await runJob(client, org: fixture.orgID, id: id)
                #expect(outcome == .discard(reason: "the metric no longer exists"))
                let (_, info) = try await send(http, .get, "/api/exports/\(id)", key: fixture.adminKey)
                #expect(info["status"] as? String == "failed")
                #expect(info["error"] as? String == "the metric no longer exists")
                #expect(try await download(http, id, key: fixture.adminKey).0 == .conflict)

                // A job lost for good (discarded after its worker died): marked failed by the sweep.
                let (_, lost) = try await send(
                    http, .post, "/api/exports", key: fixture.adminKey,
                    json: #"{"kind": "events", "format": "json", \#(range)}"#)
                let lostID = try #require(lost["id"] as? String)
                try await client.query(
                    """
                    UPDATE jobs SET state = 'discarded' WHERE kind = 'exports.generate';
                    """, logger: Self.logger)
                try await client.query(
                    "UPDATE exports SET status = 'running', created_at = now() - interval '5 minutes' WHERE id = \(UUID(uuidString: lostID)!)",
                    logger: Self.logger)
                let swept = try await ExportExpiryJob.expire(client: client, logger: Self.logger)
                #expect(swept.lost == 1)
                #expect(try await send(http, .get, "/api/exports/\(lostID)", key: fixture.adminKey).1["status"] as? String == "failed")
            }
        }
    }
}
