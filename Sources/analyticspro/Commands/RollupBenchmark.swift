import API
import ArgumentParser
import Core
import Foundation
#if canImport(FoundationNetworking)
import FoundationNetworking
#endif
import HummingbirdWSClient
import Jobs
import Logging
import NIOConcurrencyHelpers
import PostgresNIO
import Scheduler

extension BenchCommand {
    struct Rollup: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Rollups: events folded per second, event-to-WebSocket freshness, 12-widget dashboard latency.")

        @Option(name: .customLong("live-events"), help: "Events with current timestamps for the fold-rate phase.")
        var liveEvents: Int = 1_000_000
        @Option(name: .customLong("history-events"), help: "Events over the last 30 days behind the dashboard.")
        var historyEvents: Int = 2_000_000
        @Option(name: .customLong("freshness-samples"), help: "Events timed from accepted to pushed.") var samples: Int = 200
        @Option(name: .customLong("background-rate"), help: "Events/s inserted alongside the freshness phase.")
        var backgroundRate: Int = 50_000
        @Option(name: .customLong("dashboard-requests"), help: "Dashboard data requests timed.") var requests: Int = 300
        @OptionGroup var options: GlobalOptions

        func run() async throws {
            guard liveEvents >= 0, historyEvents >= 0, samples > 0, backgroundRate >= 0, requests > 0 else {
                throw CLIFailure.usage("counts must not be negative")
            }
            let configuration = try options.resolve()
            var logger = Logger(label: "analyticspro.bench")
            logger.logLevel = .warning
            let session = try await DatabaseSession.open(configuration, logger: logger)
            defer { session.close() }
            let bench = RollupBenchmark(
                url: session.setup.url, liveEvents: liveEvents, historyEvents: historyEvents, samples: samples,
                backgroundRate: backgroundRate, requests: requests, logger: logger)
            try await session.withClient { client in try await bench.run(client: client) }
        }
    }
}

/// Runs against its own organization ("bench-rollup-…"), which it leaves behind for
/// inspection: its rows are ordinary tenant data.
struct RollupBenchmark: Sendable {
    let url: DatabaseURL
    let liveEvents: Int
    let historyEvents: Int
    let samples: Int
    let backgroundRate: Int
    let requests: Int
    let logger: Logger
    static let chunk = 25_000

    func run(client: PostgresClient) async throws {
        let created = try await OrganizationStore(client: client).create(
            name: "bench-rollup-\(UUID().uuidString.prefix(8))", tier: .enterprise, eventLimit: Int64.max / 4, logger: logger)
        let org = created.orgID
        let metrics = try await createMetrics(client: client, org: org)
        try await fold(client)  // start from a current watermark

        // 1. Fold rate at ingestion's shape: fresh events, a chunk per run.
        var folded = 0
        var foldTime = Duration.zero
        while folded < liveEvents {
            let count = min(Self.chunk, liveEvents - folded)
            try await insert(client: client, org: org, count: count, from: "now() - interval '5 seconds'", span: "5 seconds")
            foldTime += try await fold(client)
            folded += count
        }
        if liveEvents > 0 {
            print(String(format: "rollup_events_per_s=%.0f", Double(liveEvents) / foldTime.seconds))
            print(String(format: "rollup_run_ms=%.1f", foldTime.seconds * 1000 / Double((liveEvents + Self.chunk - 1) / Self.chunk)))
        }

        // 2. History behind the dashboard: 30 days, in time order, folded as it arrives.
        let slices = max(1, historyEvents / 250_000)
        var historyFold = Duration.zero
        for slice in 0..<slices {
            let count = historyEvents / slices
            let hours = 720.0 / Double(slices)
            try await insert(
                client: client, org: org, count: count,
                from: "now() - interval '30 days' + \(Double(slice) * hours) * interval '1 hour'", span: "\(hours) hours")
            historyFold += try await fold(client)
        }
        if historyEvents > 0 {
            print(String(format: "rollup_history_events_per_s=%.0f", Double(historyEvents) / historyFold.seconds))
        }
        let raw = try await client.query("SELECT count(*)::int8 FROM events WHERE org_id = \(org)", logger: logger)
            .collect().first?.decode(Int64.self) ?? 0
        print("raw_events=\(raw)")
        // Settled buckets are all-visible once (auto)vacuum has passed; the dashboard's
        // index-only reads depend on it. Done here rather than waiting for autovacuum.
        try await client.query("VACUUM ANALYZE rollups", logger: logger)
        try await client.query("ANALYZE events", logger: logger)

        // 3 and 4 through a real API node and worker in this process.
        try await withServer(client: client) { port in
            // 12 widgets of ungrouped metrics (one series each), then 12 where seven are
            // grouped (by plan or endpoint: a series per group as well).
            let plain = [metrics[1], metrics[2], metrics[3], metrics[4], metrics[13], metrics[5]]
            let grouped = metrics.filter { $0 != metrics[5] }
            print("dashboard_widgets=12")
            try await dashboardLatency(
                port: port, key: created.apiKey,
                dashboard: try await createDashboard(port: port, key: created.apiKey, name: "plain", metrics: plain),
                label: "plain")
            try await dashboardLatency(
                port: port, key: created.apiKey,
                dashboard: try await createDashboard(port: port, key: created.apiKey, name: "grouped", metrics: grouped),
                label: "grouped")
            try await freshness(client: client, port: port, key: created.apiKey, org: org, metrics: metrics)
        }
    }

    // MARK: Data

    /// Six custom metrics plus the eight built-ins.
    func createMetrics(client: PostgresClient, org: UUID) async throws -> [UUID] {
        let definitions: [(String, String, String, String?, String, String?)] = [
            ("Revenue", "purchase", "sum", "amount", "[]", "plan"),
            ("Average order", "purchase", "avg", "amount", "[]", nil),
            ("Order p95", "purchase", "p95", "amount", "[]", nil),
            ("Paid orders", "purchase", "count", nil, #"[{"property": "plan", "op": "in", "value": ["pro", "team"]}]"#, nil),
            ("Buyers", "purchase", "unique_users", nil, "[]", nil),
            ("Fresh", "bench_fresh", "count", nil, "[]", nil),
        ]
        var ids: [UUID] = []
        for (name, event, aggregation, property, filters, groupBy) in definitions {
            let id = UUID()
            try await client.query(
                """
                INSERT INTO metrics (org_id, id, name, event_name, aggregation, property, filters, group_by, horizon_xid, backfill_done)
                VALUES (\(org), \(id), \(name), \(event), \(aggregation), \(property), \(filters)::jsonb, \(groupBy),
                        pg_current_xact_id()::text::bigint, true)
                """, logger: logger)
            ids.append(id)
        }
        let builtins = try await client.query(
            "SELECT id FROM metrics WHERE org_id = \(org) AND builtin IS NOT NULL ORDER BY builtin", logger: logger
        ).collect().map { try $0.decode(UUID.self) }
        return ids + builtins
    }

    /// Purchases, page views and API requests, spread evenly over [from, from + span).
    func insert(client: PostgresClient, org: UUID, count: Int, from: String, span: String) async throws {
        try await client.query(
            """
            INSERT INTO events (org_id, event_name, properties, user_id, "timestamp")
            SELECT \(org),
                   (ARRAY['purchase', 'page_view', 'api_request', 'page_view'])[1 + i % 4],
                   CASE i % 4
                       WHEN 0 THEN jsonb_build_object('amount', round((random() * 500)::numeric, 2),
                                                      'plan', (ARRAY['free', 'pro', 'team', 'enterprise'])[1 + (i / 4) % 4])
                       WHEN 2 THEN jsonb_build_object('endpoint', (ARRAY['/api/events', '/api/metrics', '/api/dashboards'])[1 + (i / 4) % 3],
                                                      'method', 'GET', 'status', (ARRAY[200, 200, 201, 404, 500])[1 + (i / 4) % 5],
                                                      'duration_ms', round((random() * 120)::numeric, 1))
                       ELSE jsonb_build_object('path', '/p/' || (i % 50))
                   END,
                   'user' || (random() * 100000)::int,
                   \(unescaped: from) + (i::float8 / \(count)) * interval '\(unescaped: span)'
            FROM generate_series(0, \(count - 1)) i
            """, logger: logger)
    }

    /// Runs fresh rollups until every committed event is folded; returns the time taken.
    @discardableResult
    func fold(_ client: PostgresClient) async throws -> Duration {
        let started = ContinuousClock.now
        while true {
            if case .folded(let watermark, _, _) = try await RollupJob.runOnce(client: client, logger: logger),
                try await !RollupJob.hasRows(atOrAbove: watermark, client: client, logger: logger)
            {
                return ContinuousClock.now - started
            }
            try await Task.sleep(for: .milliseconds(1))
        }
    }

    // MARK: Server

    func withServer(client: PostgresClient, _ body: @Sendable (Int) async throws -> Void) async throws {
        let dependencies = APIServer.Dependencies(client: client, listenConfiguration: url.connectionConfiguration, logger: logger)
        let port = NIOLockedValueBox<Int?>(nil)
        let app = APIServer.makeApplication(dependencies, host: "127.0.0.1", port: 0, logger: logger) { bound in
            port.withLockedValue { $0 = bound }
        }
        var workerConfiguration = WorkerConfiguration(queues: ["rollups": 2, "backfill": 1])
        workerConfiguration.pruneInterval = .seconds(3600)
        let worker = Worker(
            client: client, listenConfiguration: url.connectionConfiguration, registry: JobCatalog.registry(client: client),
            configuration: workerConfiguration, logger: logger)
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { try await app.run() }
            group.addTask { try await worker.run() }
            defer {
                worker.shutdown()
                group.cancelAll()
            }
            var bound: Int?
            for _ in 0..<500 where bound == nil {
                try await Task.sleep(for: .milliseconds(10))
                bound = port.withLockedValue { $0 }
            }
            guard let bound else { throw CLIFailure.runtime("the benchmark's API server did not start") }
            try await body(bound)
        }
    }

    func http(_ method: String, port: Int, path: String, key: String, body: String? = nil) async throws -> (Int, Data) {
        var request = URLRequest(url: URL(string: "http://127.0.0.1:\(port)\(path)")!)
        request.httpMethod = method
        request.setValue("Bearer \(key)", forHTTPHeaderField: "Authorization")
        request.setValue("application/json", forHTTPHeaderField: "Content-Type")
        request.httpBody = body.map { Data($0.utf8) }
        let (data, response) = try await URLSession.shared.data(for: request)
        return ((response as? HTTPURLResponse)?.statusCode ?? 0, data)
    }

    /// Twelve line widgets over 30 days of hourly buckets.
    func createDashboard(port: Int, key: String, name: String, metrics: [UUID]) async throws -> String {
        let widgets = (0..<12).map { index in
            #"{"id": "w\#(index)", "metric_id": "\#(metrics[index % metrics.count].uuidString.lowercased())", "chart": "line", "range": "last_30d", "granularity": "hour"}"#
        }
        let (status, data) = try await http(
            "POST", port: port, path: "/api/dashboards", key: key,
            body: #"{"name": "\#(name)", "config": {"widgets": [\#(widgets.joined(separator: ","))]}}"#)
        guard status == 201, let object = try JSONSerialization.jsonObject(with: data) as? [String: Any],
            let id = object["id"] as? String
        else { throw CLIFailure.runtime("cannot create the benchmark dashboard: HTTP \(status)") }
        return id
    }

    /// p50/p99 of `GET /api/dashboards/:id/data`, after ten warm-up requests.
    func dashboardLatency(port: Int, key: String, dashboard: String, label: String) async throws {
        var times: [Double] = []
        var bytes = 0
        var points = 0
        for index in 0..<(requests + 10) {
            let started = ContinuousClock.now
            let (status, data) = try await http("GET", port: port, path: "/api/dashboards/\(dashboard)/data", key: key)
            guard status == 200 else { throw CLIFailure.runtime("dashboard data: HTTP \(status)") }
            if index >= 10 { times.append((ContinuousClock.now - started).seconds * 1000) }
            bytes = data.count
            if index == 0 { points = String(decoding: data, as: UTF8.self).components(separatedBy: #"{"t":"#).count - 1 }
        }
        print("dashboard_\(label)_points=\(points)")
        print("dashboard_\(label)_response_bytes=\(bytes)")
        print(String(format: "dashboard_\(label)_p50_ms=%.2f", Self.percentile(times, 0.50)))
        print(String(format: "dashboard_\(label)_p99_ms=%.2f", Self.percentile(times, 0.99)))
    }

    /// Event accepted (HTTP 202) → WebSocket message showing it, while other events
    /// stream in at `backgroundRate`.
    func freshness(client: PostgresClient, port: Int, key: String, org: UUID, metrics: [UUID]) async throws {
        let (_, created) = try await http(
            "POST", port: port, path: "/api/dashboards", key: key,
            body: #"{"name": "fresh", "config": {"widgets": [{"id": "fresh", "metric_id": "\#(metrics[5].uuidString.lowercased())", "chart": "kpi", "range": "last_24h"}]}}"#)
        guard let id = (try JSONSerialization.jsonObject(with: created) as? [String: Any])?["id"] as? String else {
            throw CLIFailure.runtime("cannot create the freshness dashboard")
        }
        // Arrival time of each message, by the widget total it shows.
        let arrivals = NIOLockedValueBox<[Double: ContinuousClock.Instant]>([:])
        let socket = Task {
            try await WebSocketClient.connect(
                url: "ws://127.0.0.1:\(port)/ws/dashboard/\(id)?token=\(key)",
                configuration: .init(maxFrameSize: 1 << 24), logger: logger
            ) { inbound, _, _ in
                for try await message in inbound.messages(maxSize: 1 << 24) {
                    let now = ContinuousClock.now
                    guard case .text(let text) = message,
                        let object = try? JSONSerialization.jsonObject(with: Data(text.utf8)) as? [String: Any],
                        let total = ((object["widgets"] as? [[String: Any]])?.first?["total"] as? Double)
                    else { continue }
                    arrivals.withLockedValue { if $0[total] == nil { $0[total] = now } }
                }
            }
        }
        defer { socket.cancel() }
        let background = Task {
            guard backgroundRate > 0 else { return }
            let perTick = max(1, backgroundRate / 10)
            while !Task.isCancelled {
                let started = ContinuousClock.now
                try await insert(client: client, org: org, count: perTick, from: "now() - interval '1 second'", span: "1 second")
                try await Task.sleep(until: started + .milliseconds(100), clock: .continuous)
            }
        }
        defer { background.cancel() }
        for _ in 0..<500 where arrivals.withLockedValue({ $0[0] }) == nil { try await Task.sleep(for: .milliseconds(10)) }

        var latencies: [Double] = []
        for sample in 1...samples {
            let (status, _) = try await http("POST", port: port, path: "/api/events", key: key, body: #"{"name": "bench_fresh"}"#)
            let accepted = ContinuousClock.now
            guard status == 202 else { throw CLIFailure.runtime("ingest: HTTP \(status)") }
            var seen: ContinuousClock.Instant?
            let deadline = accepted + .seconds(30)
            while seen == nil, ContinuousClock.now < deadline {
                seen = arrivals.withLockedValue { $0[Double(sample)] }
                if seen == nil { try await Task.sleep(for: .milliseconds(1)) }
            }
            guard let seen else { throw CLIFailure.runtime("event \(sample) never reached the WebSocket") }
            latencies.append(max(0, (seen - accepted).seconds * 1000))
            try await Task.sleep(for: .milliseconds(Int.random(in: 20...120)))
        }
        print("freshness_background_events_per_s=\(backgroundRate)")
        print(String(format: "freshness_p50_ms=%.0f", Self.percentile(latencies, 0.50)))
        print(String(format: "freshness_p99_ms=%.0f", Self.percentile(latencies, 0.99)))
    }

    static func percentile(_ values: [Double], _ p: Double) -> Double {
        let sorted = values.sorted()
        return sorted.isEmpty ? .nan : sorted[min(sorted.count - 1, max(0, Int((Double(sorted.count) * p).rounded(.up)) - 1))]
    }
}
