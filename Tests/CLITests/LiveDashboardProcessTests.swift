import Core
import Foundation
import Logging
import TestSupport
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// The scale-out story end to end: two `serve` processes and a `worker` on one
/// database. Events posted to one API node wake the worker's rollup; its NOTIFY reaches
/// both nodes, and a client on either receives the new values.
@Suite struct LiveDashboardProcessTests {
    let binary = ChildProcess.analyticsproBinary

    func curl(_ method: String, _ url: String, key: String, body: String? = nil) throws -> [String: Any] {
        var arguments = ["-s", "-X", method, "-H", "Authorization: Bearer \(key)", "-H", "Content-Type: application/json"]
        if let body { arguments += ["--data-binary", body] }
        let result = try ProcessRunner.run("/usr/bin/curl", arguments + [url])
        return (try? JSONSerialization.jsonObject(with: Data(result.output.utf8)) as? [String: Any]) ?? [:]
    }

    func waitReady(_ port: Int, _ child: ChildProcess) async throws {
        for _ in 0..<240 {
            let probe = try ProcessRunner.run(
                "/usr/bin/curl", ["-s", "-o", "/dev/null", "-w", "%{http_code}", "http://127.0.0.1:\(port)/readyz"])
            if probe.output == "200" { return }
            try await Task.sleep(for: .milliseconds(250))
        }
        Issue.record("serve on \(port) never became ready: \(child.stderr)")
    }

    @Test func pushesReachClientsOnEveryAPINode() async throws {
        let database = try await TestPostgres.shared.makeDatabase()
        guard case .unixSocket(let path) = database.endpoint else { return }
        let folder = URL(fileURLWithPath: path).deletingLastPathComponent().path
        let environment = ["DATABASE_URL": "postgres://\(database.username)@localhost/\(database.database)?host=\(folder)"]
        let created = try await ChildProcess.run(binary, ["org", "create", "Live", "--tier", "enterprise"], environment: environment)
        let org = try JSONSerialization.jsonObject(with: Data(created.stdout.utf8)) as? [String: String]
        let key = try #require(org?["api_key"])

        let (portA, portB) = (ChildProcess.freePort(), ChildProcess.freePort())
        let serveA = try ChildProcess(binary, ["serve", "--port", "\(portA)"], environment: environment)
        let serveB = try ChildProcess(binary, ["serve", "--port", "\(portB)"], environment: environment)
        let worker = try ChildProcess(
            binary, ["worker", "--queues", "rollups=2,backfill=1", "--shutdown-timeout", "0"], environment: environment)
        defer {
            for child in [serveA, serveB, worker] { child.signal(SIGKILL) }
        }
        try await waitReady(portA, serveA)
        try await waitReady(portB, serveB)

        let metric = try curl(
            "POST", "http://127.0.0.1:\(portA)/api/metrics", key: key,
            body: #"{"name": "Orders", "event_name": "order", "aggregation": "sum", "property": "total"}"#)
        let metricID = try #require(metric["id"] as? String)
        let dashboard = try curl(
            "POST", "http://127.0.0.1:\(portA)/api/dashboards", key: key,
            body: #"{"name": "Shop", "config": {"widgets": [{"id": "orders", "metric_id": "\#(metricID)", "chart": "kpi"}]}}"#)
        let dashboardID = try #require(dashboard["id"] as? String)

        let onA = LiveSocket(url: "ws://127.0.0.1:\(portA)/ws/dashboard/\(dashboardID)?token=\(key)")
        let onB = LiveSocket(url: "ws://127.0.0.1:\(portB)/ws/dashboard/\(dashboardID)?token=\(key)")
        defer {
            onA.close()
            onB.close()
        }
        #expect(try await onA.next(timeout: .seconds(20))["type"] as? String == "snapshot")
        #expect(try await onB.next(timeout: .seconds(20))["type"] as? String == "snapshot")

        // Posted to node B only; no test code runs the rollup: ingestion wakes the worker.
        let posted = try curl(
            "POST", "http://127.0.0.1:\(portB)/api/events/batch", key: key,
            body: #"{"events": [{"name": "order", "properties": {"total": 30}}, {"name": "order", "properties": {"total": 12.5}}]}"#)
        #expect(posted["accepted"] as? Int == 2)
        func total(_ message: [String: Any]) -> Double? {
            (message["widgets"] as? [[String: Any]])?.first?["total"] as? Double
        }
        let updateA = try await onA.next(timeout: .seconds(20)) { total($0) == 42.5 }
        let updateB = try await onB.next(timeout: .seconds(20)) { total($0) == 42.5 }
        #expect(updateA["type"] as? String == "update")
        #expect(updateB["type"] as? String == "update")
    }
}
