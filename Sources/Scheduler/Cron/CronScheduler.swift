import Core
import Foundation
import Logging
import NIOConcurrencyHelpers
import PostgresNIO
import ServiceLifecycle

/// Turns due cron ticks into jobs. Any number may run against one database: each
/// claims due schedules with SKIP LOCKED, and `cron_ticks`' primary key makes each
/// (schedule, tick) enqueue once.
///
/// Between ticks it sleeps until the earliest `next_run_at` (or a change NOTIFY), so an
/// idle scheduler costs nothing.
public final class CronScheduler: Service, Sendable {
    public struct Configuration: Sendable {
        /// A tick later than this is "missed" and handled by the schedule's missed policy.
        public var missedGrace: Duration = .seconds(5)
        /// Schedules claimed per transaction.
        public var batchSize = 1000
        /// Longest sleep without checking (a NOTIFY lost with a dropped connection).
        public var maximumSleep: Duration = .seconds(30)
        /// Tick records are kept this long.
        public var tickRetention: Duration = .seconds(7 * 86_400)

        public init() {}
    }

    let client: PostgresClient
    let listenConfiguration: PostgresConnection.Configuration
    let configuration: Configuration
    let logger: Logger
    let wakeup = WakeupSignal()
    private let stopRequested = WakeupSignal(latching: true)
    private let parsed = NIOLockedValueBox<[String: CronSchedule]>([:])

    public init(
        client: PostgresClient, listenConfiguration: PostgresConnection.Configuration,
        configuration: Configuration = .init(), logger: Logger
    ) {
        self.client = client
        self.listenConfiguration = listenConfiguration
        self.configuration = configuration
        self.logger = logger
    }

    public func shutdown() {
        stopRequested.signal()
        wakeup.signal()
    }

    var stopping: Bool { stopRequested.isSet }

    /// How long one step of a pass (a transaction of due schedules, a query) may take.
    static let passTimeout: Duration = .seconds(30)

    public func run() async throws {
        logger.info("scheduler started")
        // Cancelled, it stops as on SIGTERM (see Worker.run): its loops wait on signals.
        await withTaskCancellationOrGracefulShutdownHandler {
            await withDiscardingTaskGroup { group in
                group.addTask { await self.listen() }
                group.addTask { await self.loop() }
            }
        } onCancelOrGracefulShutdown: {
            self.shutdown()
        }
        logger.info("scheduler stopped")
    }

    func loop() async {
        var lastPrune = ContinuousClock.now - .seconds(3600)
        while !stopping {
            var sleep = configuration.maximumSleep
            do {
                // Each step bounded, as the worker's claims are: a connection lease asked for
                // while the client shuts down could wait forever, deaf to cancellation (seen:
                // `run` on a port already taken hung in its first pass, one start in ten).
                while try await withDeadline(Self.passTimeout, { try await self.processDue() }) == configuration.batchSize,
                    !stopping
                {}
                if let next = try await withDeadline(Self.passTimeout, { try await self.nextDue() }) {
                    sleep = min(sleep, max(.zero, .milliseconds(Int64(next.timeIntervalSinceNow * 1000))))
                }
                if ContinuousClock.now - lastPrune > .seconds(3600) {
                    lastPrune = ContinuousClock.now
                    let retention = configuration.tickRetention.milliseconds
                    try await withDeadline(Self.passTimeout) { [client, logger] in
                        try await client.query(
                            "DELETE FROM cron_ticks WHERE created_at < now() - \(retention) * interval '1 millisecond'",
                            logger: logger)
                    }
                }
            } catch {
                // A stop ends this wait, and a pass the stop cut short is no failure.
                await stopRequested.wait(timeout: .milliseconds(200))
                if stopping || Task.isCancelled { break }
                logger.warning("scheduler pass failed; retrying", metadata: ["error": "\(String(reflecting: error))"])
                sleep = .seconds(1)
            }
            if sleep > .zero { await wakeup.wait(timeout: sleep) }
        }
    }

    func nextDue() async throws -> Date? {
        try await client.withOpenConnection { connection in
            let rows = try await connection.query(
                "SELECT min(coalesce(next_run_at, '-infinity')) FROM cron_schedules WHERE enabled", logger: logger)
            for try await next in rows.decode(Date?.self) { return next }
            return nil
        }
    }

    /// Wakes the loop when schedules change (the table's trigger notifies).
    func listen() async {
        while !stopping {
            do {
                let connection = try await PostgresConnection.connect(
                    configuration: listenConfiguration, id: 0, logger: logger)
                wakeup.signal()
                try await withThrowingTaskGroup(of: Void.self) { group in
                    group.addTask {
                        while !self.stopping { await self.stopRequested.wait(timeout: .seconds(3600)) }
                        try? await connection.close()
                    }
                    group.addTask {
                        try await connection.listen(on: "analyticspro_schedules") { notifications in
                            for try await _ in notifications { self.wakeup.signal() }
                        }
                    }
                    try await group.next()
                    group.cancelAll()
                }
                try? await connection.close()
            } catch {
                if stopping { return }
                logger.warning("schedule notifications lost; reconnecting", metadata: ["error": "\(String(reflecting: error))"])
                await stopRequested.wait(timeout: .seconds(1))
            }
        }
    }

    func schedule(expression: String, timeZone: String) throws -> CronSchedule {
        let key = timeZone + " " + expression
        if let cached = parsed.withLockedValue({ $0[key] }) { return cached }
        let schedule = try CronSchedule(expression, timeZone: timeZone)
        parsed.withLockedValue { $0[key] = schedule }
        return schedule
    }

    struct DueSchedule {
        let id: Int64
        let expression: String
        let timeZone: String
        let jobKind: String
        let arguments: String
        let queue: String
        let missed: String
        let catchUpDeadline: Int64
        let overlap: String
        let orgID: UUID?
        let nextRunAt: Date?
        let lastJobID: Int64?
    }

    /// One transaction: claim due schedules, record and enqueue their ticks, advance them.
    /// - Returns: how many schedules were claimed.
    @discardableResult
    func processDue() async throws -> Int {
        try await client.withOpenConnection { connection in
            try await connection.withTransaction(logger: logger) { connection in
                try await self.processDue(on: connection)
            }
        }
    }

    func processDue(on connection: PostgresConnection) async throws -> Int {
        let rows = try await connection.query(
            """
            SELECT id, expression, timezone, job_kind, args::text, queue, missed_policy, catch_up_deadline_seconds,
                   overlap_policy, org_id, next_run_at, last_job_id, extract(epoch FROM now())::float8
            FROM cron_schedules
            WHERE enabled AND (next_run_at IS NULL OR next_run_at <= now())
            ORDER BY next_run_at NULLS FIRST
            LIMIT \(Int32(configuration.batchSize))
            FOR UPDATE SKIP LOCKED
            """, logger: logger)
        var due: [DueSchedule] = []
        var now: Int64 = 0
        for try await row in rows {
            let columns = row.makeRandomAccess()
            due.append(
                DueSchedule(
                    id: try columns[0].decode(Int64.self), expression: try columns[1].decode(String.self),
                    timeZone: try columns[2].decode(String.self), jobKind: try columns[3].decode(String.self),
                    arguments: try columns[4].decode(String.self), queue: try columns[5].decode(String.self),
                    missed: try columns[6].decode(String.self), catchUpDeadline: Int64(try columns[7].decode(Int32.self)),
                    overlap: try columns[8].decode(String.self), orgID: try columns[9].decode(UUID?.self),
                    nextRunAt: try columns[10].decode(Date?.self), lastJobID: try columns[11].decode(Int64?.self)))
            now = Int64(try columns[12].decode(Double.self).rounded(.down))
        }
        guard !due.isEmpty else { return 0 }

        // Schedules whose previous run is still pending or running, for overlap=skip.
        let watched = due.filter { $0.overlap == "skip" }.compactMap(\.lastJobID)
        var busyJobs: Set<Int64> = []
        if !watched.isEmpty {
            for try await id in try await connection.query(
                """
                SELECT id FROM jobs WHERE id = ANY(\(watched)::int8[])
                AND state IN ('available', 'scheduled', 'running', 'retryable')
                """, logger: logger
            ).decode(Int64.self) {
                busyJobs.insert(id)
            }
        }

        var tickSchedules: [Int64] = [], tickTimes: [Date] = [], tickOutcomes: [String] = []
        var nextIDs: [Int64] = [], nextTimes: [Date] = [], errorIDs: [Int64] = [], errors: [String] = []
        var jobsByTick: [String: DueSchedule] = [:]
        let grace = Int64(configuration.missedGrace.seconds)
        for schedule in due {
            let cron: CronSchedule
            do {
                cron = try self.schedule(expression: schedule.expression, timeZone: schedule.timeZone)
            } catch {
                errorIDs.append(schedule.id)
                errors.append("\(error)")
                continue
            }
            if let nextRunAt = schedule.nextRunAt {
                // Every tick from next_run_at up to now, then the missed policy.
                var ticks: [Int64] = []
                var tick = Int64(nextRunAt.timeIntervalSince1970.rounded(.down))
                let oldest = schedule.missed == "catch_up" ? now - schedule.catchUpDeadline : now - grace
                while tick <= now, ticks.count < 1000 {
                    if tick >= oldest { ticks.append(tick) }
                    guard let following = cron.next(after: tick) else { break }
                    tick = following
                }
                let busy = schedule.lastJobID.map { busyJobs.contains($0) } ?? false
                for (index, tick) in ticks.enumerated() {
                    let tickDate = Date(timeIntervalSince1970: Double(tick))
                    tickSchedules.append(schedule.id)
                    tickTimes.append(tickDate)
                    // overlap=skip: while the previous run is busy, and between ticks of one
                    // catch-up, only the first tick runs.
                    let skip = schedule.overlap == "skip" && (busy || index > 0)
                    tickOutcomes.append(skip ? "skipped_overlap" : "enqueued")
                    if !skip { jobsByTick["\(schedule.id):\(tick)"] = schedule }
                }
            }
            nextIDs.append(schedule.id)
            nextTimes.append(cron.next(after: now).map { Date(timeIntervalSince1970: Double($0)) } ?? .distantFuture)
        }

        // Record ticks; only those recorded now (not by another scheduler) get a job.
        var recorded: [String] = []
        if !tickSchedules.isEmpty {
            for try await (scheduleID, tickAt, outcome) in try await connection.query(
                """
                INSERT INTO cron_ticks (schedule_id, tick_at, outcome)
                SELECT * FROM unnest(\(tickSchedules)::int8[], \(tickTimes)::timestamptz[], \(tickOutcomes)::text[])
                ON CONFLICT DO NOTHING
                RETURNING schedule_id, extract(epoch FROM tick_at)::int8, outcome
                """, logger: logger
            ).decode((Int64, Int64, String).self) where outcome == "enqueued" {
                recorded.append("\(scheduleID):\(tickAt)")
            }
        }
        var lastJobs: [Int64: Int64] = [:]
        if !recorded.isEmpty {
            var kinds: [String] = [], queues: [String] = [], args: [String] = [], keys: [String] = [], orgs: [String] = []
            for key in recorded {
                guard let schedule = jobsByTick[key] else { continue }
                kinds.append(schedule.jobKind)
                queues.append(schedule.queue)
                args.append(schedule.arguments)
                keys.append("cron:" + key)
                orgs.append(schedule.orgID?.uuidString ?? "")
            }
            for try await (jobID, uniqueKey) in try await connection.query(
                """
                WITH inserted AS (
                    INSERT INTO jobs (kind, queue, args, unique_key, org_id, created_at)
                    SELECT kind, queue, args::jsonb, unique_key, nullif(org_id, '')::uuid, clock_timestamp()
                    FROM unnest(\(kinds)::text[], \(queues)::text[], \(args)::text[], \(keys)::text[], \(orgs)::text[])
                        AS r(kind, queue, args, unique_key, org_id)
                    ON CONFLICT (unique_key)
                        WHERE unique_key IS NOT NULL AND state IN ('available', 'scheduled', 'running', 'retryable')
                        DO NOTHING
                    RETURNING id, unique_key, queue
                ), woken AS (
                    SELECT pg_notify(\(JobQueue.notifyChannel), queue) FROM (SELECT DISTINCT queue FROM inserted) q
                )
                SELECT id, unique_key FROM inserted WHERE (SELECT count(*) FROM woken) >= 0
                """, logger: logger
            ).decode((Int64, String).self) {
                let parts = uniqueKey.split(separator: ":")
                if parts.count == 3, let scheduleID = Int64(parts[1]) {
                    lastJobs[scheduleID] = max(lastJobs[scheduleID] ?? 0, jobID)
                }
            }
        }
        let lastJobIDs = nextIDs.map { lastJobs[$0] ?? 0 }
        try await connection.query(
            """
            UPDATE cron_schedules s SET next_run_at = u.next_run_at,
                last_tick_at = CASE WHEN u.last_job_id > 0 THEN now() ELSE s.last_tick_at END,
                last_job_id = CASE WHEN u.last_job_id > 0 THEN u.last_job_id ELSE s.last_job_id END
            FROM unnest(\(nextIDs)::int8[], \(nextTimes)::timestamptz[], \(lastJobIDs)::int8[]) AS u(id, next_run_at, last_job_id)
            WHERE s.id = u.id
            """, logger: logger)
        if !errorIDs.isEmpty {
            // A row written around the API (psql) with a bad expression: park it, say why.
            try await connection.query(
                """
                UPDATE cron_schedules s SET next_run_at = 'infinity', last_error = u.error
                FROM unnest(\(errorIDs)::int8[], \(errors)::text[]) AS u(id, error) WHERE s.id = u.id
                """, logger: logger)
        }
        return due.count
    }
}
