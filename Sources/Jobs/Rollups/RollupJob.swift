import Core
import Foundation
import Logging
import PostgresNIO
import Scheduler

/// Folds newly committed events into the rollups, exactly once (see migration 0007 for
/// the argument): woken by ingestion, and by a cron schedule as the safety net.
public struct RollupJob: JobDefinition {
    public struct Arguments: Codable, Sendable {
        public init() {}
    }

    public static let kind = Rollups.jobKind
    public static var defaultQueue: String { "rollups" }
    public static var defaultMaxAttempts: Int { 1000 }
    public static var defaultTimeout: Duration? { .seconds(120) }

    let client: PostgresClient

    public init(client: PostgresClient, budget: Duration = .seconds(60)) {
        self.client = client
        self.budget = budget
    }

    public enum Result: Sendable, Equatable {
        /// Another writer holds the rollup lock.
        case busy
        /// Folded events below `watermark`.
        case folded(watermark: Int64, rows: Int, matches: Int64)
    }

    /// How long a run keeps folding while events keep arriving before it hands over to
    /// the next job: the woken job snoozes (it runs again at once, on any worker), since
    /// the wake-ups that came while it ran found its unique key taken and enqueued
    /// nothing. It used to finish instead and leave the rows committed after its last look
    /// to the next wake-up or the cron safety net (`bench rollup`, which runs no
    /// scheduler, waited for ever on such an event).
    let budget: Duration
    /// Caught up, a run lingers this long before finishing: a commit meanwhile is folded
    /// at once, and one just after is sure to find this job completed, so its wake-up
    /// enqueues the next (a pending job's unique key would make it a no-op).
    static let linger: Duration = .milliseconds(300)
    /// Looks start at most this often (DESIGN §6: a few hundred milliseconds). Each look
    /// costs a dozen statements whatever it finds: at one every 20 ms, the rollup's
    /// backend took 15 % of a core beside 20,000 single events/s, 5 % at this interval.
    /// A backlog is not slowed: its runs take longer than this.
    static let lookInterval: Duration = .milliseconds(200)
    /// Transaction ids one fresh run folds at most. An ingest transaction stores up to
    /// 2,000 events, so a run reads at most a million rows (a few seconds); caught up,
    /// a run spans far fewer.
    public static let maximumTransactions: Int64 = 500

    public func run(_ arguments: Arguments, context: JobContext) async throws -> JobOutcome {
        try await Self.scheduleBackfills(client: client, logger: context.logger)
        let clock = ContinuousClock()
        let started = clock.now
        var caughtUpSince: ContinuousClock.Instant?
        var busyTries = 0
        // The job ingestion wakes holds the rollup's unique key; the cron safety net's
        // jobs hold their tick's key.
        let keyed = context.uniqueKey == Rollups.jobUniqueKey
        // A loop, not a snooze: a snoozed job waits for the worker's next poll (a second).
        while clock.now - started < budget {
            if !keyed, try await Self.keyedRunIsFolding(client: client, logger: context.logger) { return .success }
            let lookStarted = clock.now
            switch try await Self.runOnce(client: client, logger: context.logger, jobID: context.id) {
            case .busy:
                // Another run holds the lock and keeps folding while events arrive: two
                // looping runs would only take turns. But it may be finishing, past its
                // last look at the table: try a little later before leaving it the work.
                busyTries += 1
                if busyTries > 3 { return .success }
                try await Task.sleep(for: .milliseconds(150))
            case .folded(let watermark, let rows, _):
                busyTries = 0
                if rows > 0 { caughtUpSince = nil }
                if try await Self.hasRows(atOrAbove: watermark, client: client, logger: context.logger) {
                    // Rows committed meanwhile, or waiting for an older transaction to end.
                    caughtUpSince = nil
                } else {
                    let since = caughtUpSince ?? clock.now
                    caughtUpSince = since
                    if clock.now - since >= Self.linger { return .success }
                }
                try await Task.sleep(until: lookStarted + Self.lookInterval, clock: clock)
            }
        }
        // Out of budget with rows maybe left: the woken job runs again (a snooze spends no
        // attempt and keeps the unique key); a cron tick's job leaves them to it or the next tick.
        return keyed ? .snooze(.zero) : .success
    }

    /// One fresh run in one transaction: the rows of transactions that ended since the
    /// last run, folded; the watermark moved; the API nodes told at commit.
    public static func runOnce(
        client: PostgresClient, logger: Logger, maximumTransactions: Int64 = RollupJob.maximumTransactions,
        jobID: Int64? = nil
    ) async throws -> Result {
        try await client.withTransaction(logger: logger) { connection in
            let locked = try await connection.query(
                "SELECT pg_try_advisory_xact_lock(\(Rollups.advisoryLockKey))", logger: logger
            ).collect().first?.decode(Bool.self) ?? false
            guard locked else { return .busy }
            // A run's GROUP BY sorts tens of thousands of rows: keep it in memory.
            try await connection.query("SET LOCAL work_mem = '64MB'", logger: logger)
            // At most `maximumTransactions` ingest transactions per run, starting at the
            // first one not folded: a backlog (workers down for a day while `serve` took
            // events) is folded in runs that each finish, instead of one run over every
            // row that times out and starts over forever. Every slice ends below xmin, so
            // it is as final as the whole span.
            let position = try await connection.query(
                """
                SELECT s.watermark, pg_snapshot_xmin(pg_current_snapshot())::text::bigint,
                       (SELECT min(ingest_xid) FROM events WHERE ingest_xid >= s.watermark)
                FROM rollup_state s WHERE s.shard = 0
                """, logger: logger
            ).collect().first?.decode((Int64, Int64, Int64?).self)
            guard let (low, xmin, first) = position, xmin > low else {
                return .folded(watermark: position?.0 ?? 0, rows: 0, matches: 0)
            }
            // No row below `first` is visible, and one committed later has an xid at or
            // above xmin, beyond this run: [from, high) holds the same rows as [low, high).
            let from = max(low, first ?? xmin)
            let high = min(xmin, from + maximumTransactions)
            // A later statement: its snapshot sees every transaction below `high` finished.
            // Hash aggregation: the planner's row estimate for fresh rows is far too low
            // and picks a sort of every (event, metric) pair instead.
            try await connection.query("SET LOCAL enable_sort = off", logger: logger)
            let rows = try await connection.query(deltaQuery(from: from, to: high), logger: logger)
            let deltas = try await RollupFolder.decodeDeltas(rows)
            try await connection.query("SET LOCAL enable_sort = on", logger: logger)
            let touched = try await RollupFolder.fold(deltas, on: connection, logger: logger)
            try await RollupFolder.notify(touched, on: connection, logger: logger)
            try await connection.query(
                """
                UPDATE rollup_state SET watermark = \(high), last_run_at = now(), updated_at = now(), looked_by = \(jobID)
                WHERE shard = 0
                """, logger: logger)
            if touched.rows > 0 {
                logger.debug(
                    "rollup folded",
                    metadata: ["matches": "\(touched.matches)", "rows": "\(touched.rows)", "watermark": "\(high)"])
            }
            return .folded(watermark: high, rows: touched.rows, matches: touched.matches)
        }
    }

    /// The deltas of the events of transactions [from, to): metrics that only count events
    /// or users by name (`minute_counts`, migration 0015) from the events counted per minute,
    /// the others per (event, metric) pair. Pairs are made only for events one of the others
    /// may want (a hash probe per event on its name key, or on its organization for metrics
    /// on '*'): with only the built-ins, no event is paired.
    static func deltaQuery(from: Int64, to: Int64) -> PostgresQuery {
        """
        SELECT \(unescaped: RollupFolder.deltaColumns)
        FROM (SELECT \(unescaped: RollupFolder.fencedColumns) FROM rollup_matches
              WHERE ingest_xid >= \(from) AND ingest_xid < \(to) AND ingest_xid >= horizon_xid
                AND NOT (minute_counts AND horizon_xid <= \(from))
                AND (name_key IN (SELECT event_name_key(org_id, event_name) FROM metrics
                                  WHERE event_name <> '*' AND NOT (minute_counts AND horizon_xid <= \(from)))
                     OR org_id IN (SELECT org_id FROM metrics
                                   WHERE event_name = '*' AND NOT (minute_counts AND horizon_xid <= \(from))))
              OFFSET 0) r
        \(unescaped: RollupFolder.deltaGrouping)
        UNION ALL
        SELECT * FROM rollup_minute_deltas(\(from), \(to))
        """
    }

    /// Whether the woken job is running and made the last run within 2 s: it loops until
    /// every committed event is folded, so another job looping beside it would only take
    /// turns with it at the lock (migration 0016).
    static func keyedRunIsFolding(client: PostgresClient, logger: Logger) async throws -> Bool {
        try await client.query(
            """
            SELECT EXISTS (SELECT 1 FROM rollup_state s JOIN jobs j ON j.id = s.looked_by
                           WHERE s.shard = 0 AND s.last_run_at > now() - interval '2 seconds'
                             AND j.unique_key = \(Rollups.jobUniqueKey) AND j.state = 'running')
            """, logger: logger
        ).collect().first?.decode(Bool.self) == true
    }

    public static func hasRows(atOrAbove watermark: Int64, client: PostgresClient, logger: Logger) async throws -> Bool {
        try await client.query(firstRowQuery(atOrAbove: watermark), logger: logger).collect().first?.decode(Int64?.self) != nil
    }

    /// The first transaction id at or above `watermark`, or NULL. `min()` is planned as one
    /// index probe per partition whatever the statistics say. `EXISTS` was not: on a
    /// partition not analyzed yet (a new month, a burst before autovacuum's next round)
    /// the planner guesses a third of the rows match and picks a sequential scan that
    /// stops at the first, and caught up there is none — measured, 30 ms per look at
    /// 240,000 rows, growing with the month, and a running rollup looks several times a second.
    static func firstRowQuery(atOrAbove watermark: Int64) -> PostgresQuery {
        "SELECT min(ingest_xid) FROM events WHERE ingest_xid >= \(watermark)"
    }

    /// Metrics whose backfill has not finished get a backfill job (a no-op when one is
    /// already queued): covers built-ins added by a migration and jobs lost to a crash.
    static func scheduleBackfills(client: PostgresClient, logger: Logger) async throws {
        let rows = try await client.query(
            "SELECT org_id, id, version FROM metrics WHERE NOT backfill_done LIMIT 100", logger: logger
        ).collect()
        for row in rows {
            let (org, metric, version) = try row.decode((UUID, UUID, Int32).self)
            let arguments = BackfillJob.Arguments(orgID: org, metricID: metric, version: Int(version))
            _ = try await JobQueue(client: client).enqueue(
                BackfillJob.self, arguments, options: BackfillJob.options(arguments), logger: logger)
        }
    }
}
