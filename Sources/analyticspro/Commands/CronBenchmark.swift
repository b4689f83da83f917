import Foundation
import Logging
import PostgresNIO
import Scheduler
import Core

#if canImport(Glibc)
import Glibc
#endif

/// Cron figures: raw next-fire speed, then a scheduler against many loaded schedules.
struct CronBenchmark: Sendable {
    let url: DatabaseURL
    let schedules: Int
    let seconds: Int
    let logger: Logger

    static let expressions = [
        "*/15 * * * *", "0 9 * * MON-FRI", "30 2 * * *", "0 0 1 * *", "*/5 9-17 * * 1-5", "0 */2 * * *",
        "@daily", "15 10 13 * FRI", "0 0 29 2 *", "*/10 * * * * *",
    ]
    static let zones = ["UTC", "America/New_York", "Europe/Berlin", "Australia/Lord_Howe", "Asia/Kolkata"]

    /// Each schedule walks forward from 2026-01-01 one fire time after another.
    static func nextPerSecond(computations: Int) throws -> Int {
        let schedules = try expressions.flatMap { expression in
            try zones.map { try CronSchedule(expression, timeZone: $0) }
        }
        var cursors = [Int64](repeating: 1_767_225_600, count: schedules.count)
        var checksum: Int64 = 0
        let start = ContinuousClock.now
        for index in 0..<computations {
            let slot = index % schedules.count
            let next = schedules[slot].next(after: cursors[slot]) ?? 1_767_225_600
            cursors[slot] = next > 4_000_000_000 ? 1_767_225_600 : next
            checksum &+= next
        }
        let elapsed = (ContinuousClock.now - start).seconds
        if checksum == 42 { print("") }  // keeps the loop from being optimised away
        return Int(Double(computations) / elapsed)
    }

    func run(client: PostgresClient) async throws {
        try await clean(client)
        print("schedules=\(schedules)")
        // Every schedule fires once a minute at its own second: ~schedules/60 ticks a second.
        try await client.query(
            """
            INSERT INTO cron_schedules (name, expression, timezone, job_kind, queue)
            SELECT 'bench-' || i, (i % 60) || ' * * * * *', 'UTC', 'bench.tick', 'bench-cron'
            FROM generate_series(1, \(schedules)) AS i
            """, logger: logger)
        let scheduler = CronScheduler(client: client, listenConfiguration: url.connectionConfiguration, logger: logger)
        let loadStart = ContinuousClock.now
        let measured = try await withThrowingTaskGroup(of: Void.self) { group -> (from: Date, busy: Double, idle: Double) in
            group.addTask { try await scheduler.run() }
            defer { scheduler.shutdown() }
            // Warm-up: the scheduler computes every new schedule's first run; lag is
            // measured from a second after that, in steady state.
            while try await client.query(
                "SELECT count(*)::int8 FROM cron_schedules WHERE name LIKE 'bench-%' AND next_run_at IS NULL", logger: logger
            ).collect().first?.decode(Int64.self) ?? 0 > 0 {
                try await Task.sleep(for: .milliseconds(100))
            }
            print(String(format: "first_runs_computed_s=%.2f", (ContinuousClock.now - loadStart).seconds))
            let measuredFrom = Date().addingTimeInterval(1)
            let busyStart = Self.cpuTime()
            try await Task.sleep(for: .seconds(seconds))
            let busy = Self.cpuTime() - busyStart
            // Idle: push every schedule a year out; measure CPU while nothing is due.
            try await client.query("UPDATE cron_schedules SET expression = '@yearly' WHERE name LIKE 'bench-%'", logger: logger)
            try await Task.sleep(for: .seconds(5))
            let idleStart = Self.cpuTime()
            try await Task.sleep(for: .seconds(10))
            return (measuredFrom, busy, Self.cpuTime() - idleStart)
        }
        let measuredFrom = measured.from
        let lags = try await client.query(
            """
            SELECT extract(epoch FROM j.created_at - t.tick_at)::float8
            FROM cron_ticks t
            JOIN jobs j ON j.unique_key = 'cron:' || t.schedule_id || ':' || extract(epoch FROM t.tick_at)::int8
            WHERE t.tick_at >= \(measuredFrom) AND j.queue = 'bench-cron'
            ORDER BY 1
            """, logger: logger
        ).collect().map { try $0.decode(Double.self) }
        func percentile(_ p: Double) -> Double {
            lags.isEmpty ? .nan : lags[min(lags.count - 1, Int((Double(lags.count) * p).rounded(.up)) - 1)] * 1000
        }
        print("ticks_measured=\(lags.count)")
        print(String(format: "tick_lag_p50_ms=%.1f", percentile(0.5)))
        print(String(format: "tick_lag_p99_ms=%.1f", percentile(0.99)))
        print(String(format: "tick_lag_max_ms=%.1f", percentile(1.0)))
        print(String(format: "scheduler_cpu_busy_percent=%.1f", measured.busy / Double(seconds) * 100))
        print(String(format: "scheduler_cpu_idle_percent=%.2f", measured.idle / 10 * 100))
        try await clean(client)
    }

    func clean(_ client: PostgresClient) async throws {
        try await client.query("DELETE FROM cron_schedules WHERE name LIKE 'bench-%'", logger: logger)
        try await client.query("DELETE FROM jobs WHERE queue = 'bench-cron'", logger: logger)
    }

    /// CPU seconds this process has used (user + system).
    static func cpuTime() -> Double {
        var usage = rusage()
        getrusage(RUSAGE_SELF.rawValue, &usage)
        return Double(usage.ru_utime.tv_sec + usage.ru_stime.tv_sec)
            + Double(usage.ru_utime.tv_usec + usage.ru_stime.tv_usec) / 1e6
    }
}
