import Core
import Foundation
import Logging
import PostgresNIO
@testable import Scheduler
import TestSupport
import Testing

@Suite struct CronSchedulerTests {
    func makeScheduler(_ client: PostgresClient, _ url: DatabaseURL) -> CronScheduler {
        CronScheduler(client: client, listenConfiguration: url.connectionConfiguration, logger: queueLogger)
    }

    func withSchedulers<T: Sendable>(
        _ schedulers: [CronScheduler], _ body: @Sendable () async throws -> T
    ) async throws -> T {
        try await withThrowingTaskGroup(of: T?.self) { group in
            for scheduler in schedulers { group.addTask { try await scheduler.run(); return nil } }
            defer { for scheduler in schedulers { scheduler.shutdown() } }
            return try await body()
        }
    }

    /// Three schedulers, one 1-second schedule, 10 seconds: every tick enqueued once.
    @Test func threeSchedulersEnqueueEachTickOnce() async throws {
        try await withTestDatabase { client, url in
            try await ScheduleStore(client: client).upsert(
                .init(name: "every-second", expression: "* * * * * *", jobKind: "test.tick"), logger: queueLogger)
            let schedulers = (0..<3).map { _ in makeScheduler(client, url) }
            try await withSchedulers(schedulers) {
                try await Task.sleep(for: .seconds(10))
            }
            let (ticks, first, last) = try await client.query(
                "SELECT count(*)::int, extract(epoch FROM min(tick_at))::int8, extract(epoch FROM max(tick_at))::int8 FROM cron_ticks",
                logger: queueLogger
            ).collect().first!.decode((Int, Int64, Int64).self)
            #expect(ticks >= 9 && ticks <= 11)
            // Consecutive seconds, none missing, none twice.
            #expect(Int64(ticks) == last - first + 1)
            let (jobs, distinctKeys) = try await client.query(
                "SELECT count(*)::int, count(DISTINCT unique_key)::int FROM jobs WHERE kind = 'test.tick'", logger: queueLogger
            ).collect().first!.decode((Int, Int).self)
            #expect(jobs == ticks && distinctKeys == ticks)
            // Each job was enqueued within a second of its tick.
            let worstLag = try await client.scalar(
                """
                SELECT max(extract(epoch FROM j.created_at - t.tick_at))::float8
                FROM cron_ticks t JOIN jobs j ON j.unique_key = 'cron:' || t.schedule_id || ':' || extract(epoch FROM t.tick_at)::int8
                """, as: Double.self)
            #expect((worstLag ?? 99) < 1.0)
        }
    }

    /// After downtime, `skip` enqueues none of the missed ticks; `catch_up` enqueues those
    /// within its deadline.
    @Test func missedTicksFollowThePolicy() async throws {
        try await withTestDatabase { client, url in
            let store = ScheduleStore(client: client)
            try await store.upsert(
                .init(name: "skipper", expression: "*/10 * * * * *", jobKind: "test.skip"), logger: queueLogger)
            try await store.upsert(
                .init(name: "catcher", expression: "*/10 * * * * *", jobKind: "test.catch",
                      missed: .catchUp, catchUpDeadline: .seconds(35)), logger: queueLogger)
            // Simulate a scheduler that was down for a minute: both were due 60 s ago.
            try await client.query(
                "UPDATE cron_schedules SET next_run_at = date_trunc('minute', now()) - interval '1 minute'",
                logger: queueLogger)
            let scheduler = makeScheduler(client, url)
            try await scheduler.processDue()
            let skipped = try await client.scalar("SELECT count(*)::int FROM jobs WHERE kind = 'test.skip'", as: Int.self)
            let caughtUp = try await client.scalar("SELECT count(*)::int FROM jobs WHERE kind = 'test.catch'", as: Int.self)
            // skip: only a tick within the grace period (if the clock is on one) runs.
            #expect((skipped ?? 99) <= 1)
            // catch_up within 35 s of ticks every 10 s: three or four of the missed ticks.
            #expect((caughtUp ?? 0) >= 3 && (caughtUp ?? 0) <= 4)
            // Both now wait for their next regular tick.
            let future = try await client.scalar(
                "SELECT count(*)::int FROM cron_schedules WHERE next_run_at > now()", as: Int.self)
            #expect(future == 2)
        }
    }

    @Test func overlapSkipHoldsTicksWhileThePreviousRunIsPending() async throws {
        try await withTestDatabase { client, url in
            try await ScheduleStore(client: client).upsert(
                .init(name: "slow", expression: "* * * * * *", jobKind: "test.slow", overlap: .skip), logger: queueLogger)
            let scheduler = makeScheduler(client, url)
            try await scheduler.processDue()  // computes next_run_at
            for _ in 0..<3 {
                try await Task.sleep(for: .milliseconds(1100))
                try await scheduler.processDue()
            }
            // The first tick's job is never run (no worker), so later ticks are skipped.
            #expect(try await client.scalar("SELECT count(*)::int FROM jobs", as: Int.self) == 1)
            let skipped = try await client.scalar(
                "SELECT count(*)::int FROM cron_ticks WHERE outcome = 'skipped_overlap'", as: Int.self)
            #expect((skipped ?? 0) >= 2)
            // Once it completes, the next tick runs again.
            try await client.query("UPDATE jobs SET state = 'completed', finished_at = now()", logger: queueLogger)
            try await Task.sleep(for: .milliseconds(1100))
            try await scheduler.processDue()
            #expect(try await client.scalar("SELECT count(*)::int FROM jobs", as: Int.self) == 2)
        }
    }

    @Test func scheduleChangesArePickedUpWithinASecond() async throws {
        try await withTestDatabase { client, url in
            let store = ScheduleStore(client: client)
            try await store.upsert(.init(name: "yearly", expression: "@yearly", jobKind: "test.change"), logger: queueLogger)
            try await withSchedulers([makeScheduler(client, url)]) {
                let ready = try await eventually(timeout: .seconds(5)) {
                    try await client.scalar("SELECT count(*)::int FROM cron_schedules WHERE next_run_at IS NOT NULL", as: Int.self) == 1
                }
                #expect(ready)
                // The scheduler now sleeps until next year; an edit must wake it.
                try await store.upsert(.init(name: "yearly", expression: "* * * * * *", jobKind: "test.change"), logger: queueLogger)
                let changed = ContinuousClock.now
                let ran = try await eventually(timeout: .seconds(5)) {
                    try await client.scalar("SELECT count(*)::int FROM jobs WHERE kind = 'test.change'", as: Int.self) ?? 0 > 0
                }
                #expect(ran)
                #expect(ContinuousClock.now - changed < .seconds(2.5))
            }
        }
    }

    @Test func invalidSchedulesAreRejectedOrParked() async throws {
        try await withTestDatabase { client, url in
            let store = ScheduleStore(client: client)
            await #expect(throws: CronParseError.self) {
                try await store.upsert(.init(name: "bad", expression: "0 25 * * *", jobKind: "x"), logger: queueLogger)
            }
            await #expect(throws: CronParseError.self) {
                try await store.upsert(.init(name: "bad", expression: "0 1 * * *", timeZone: "Nowhere/Land", jobKind: "x"), logger: queueLogger)
            }
            #expect(try await client.scalar("SELECT count(*)::int FROM cron_schedules", as: Int.self) == 0)
            // Written around the API: the scheduler parks it and says why.
            try await client.query(
                "INSERT INTO cron_schedules (name, expression, job_kind) VALUES ('raw', '99 * * * *', 'x')", logger: queueLogger)
            try await makeScheduler(client, url).processDue()
            let error = try await client.scalar("SELECT last_error FROM cron_schedules WHERE name = 'raw'", as: String.self)
            #expect(error?.contains("minute field") == true)
        }
    }
}
