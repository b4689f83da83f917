import Core
import Foundation
import Logging
import PostgresNIO
import Scheduler

/// Folds a new or changed metric's history — the rows below its horizon — from raw
/// events, in slices of about `sliceEvents` events, each its own short transaction that
/// moves the metric's cursor with its writes (a crash repeats no slice). Fresh rollups
/// interleave between slices: they wait for one slice at most, never for the backfill.
public struct BackfillJob: JobDefinition {
    public typealias Arguments = Rollups.BackfillArguments

    public static let kind = Rollups.backfillJobKind
    public static var defaultQueue: String { "backfill" }
    public static var defaultMaxAttempts: Int { 50 }
    public static var defaultTimeout: Duration? { .seconds(300) }

    public static let defaultSliceEvents = 50_000
    /// One attempt's share of work; the job then yields its worker slot and continues.
    static let attemptBudget: Duration = .seconds(20)

    let client: PostgresClient

    public init(client: PostgresClient) {
        self.client = client
    }

    public static func options(_ arguments: Arguments) -> EnqueueOptions {
        EnqueueOptions(uniqueKey: arguments.uniqueKey, orgID: arguments.orgID)
    }

    enum Step: Equatable {
        case sliced
        case finished
        /// Transactions below the horizon are still running.
        case waiting
        /// The metric is gone or was redefined (a newer backfill owns it).
        case superseded
    }

    public func run(_ arguments: Arguments, context: JobContext) async throws -> JobOutcome {
        let clock = ContinuousClock()
        let started = clock.now
        while clock.now - started < Self.attemptBudget {
            switch try await Self.step(arguments, client: client, logger: context.logger) {
            case .sliced: continue
            case .finished, .superseded: return .success
            case .waiting: return .snooze(.milliseconds(200))
            }
        }
        return .snooze(.zero)
    }

    /// Runs the backfill to its end in this task (tests, benchmarks).
    public static func runToCompletion(
        _ arguments: Arguments, client: PostgresClient, sliceEvents: Int = BackfillJob.defaultSliceEvents, logger: Logger
    ) async throws {
        while true {
            switch try await step(arguments, client: client, sliceEvents: sliceEvents, logger: logger) {
            case .sliced: continue
            case .finished, .superseded: return
            case .waiting: try await Task.sleep(for: .milliseconds(50))
            }
        }
    }

    static func step(
        _ arguments: Arguments, client: PostgresClient, sliceEvents: Int = BackfillJob.defaultSliceEvents, logger: Logger
    ) async throws -> Step {
        try await client.withTransaction(logger: logger) { connection in
            try await connection.query("SELECT pg_advisory_xact_lock(\(Rollups.advisoryLockKey))", logger: logger)
            try await connection.query("SET LOCAL work_mem = '64MB'", logger: logger)
            let row = try await connection.query(
                """
                SELECT m.event_name, m.horizon_xid, epoch_us(m.backfill_cursor), m.backfill_done, m.version,
                       epoch_us(now() - make_interval(days => o.retention_days)),
                       pg_snapshot_xmin(pg_current_snapshot())::text::bigint, epoch_us(now() + interval '2 hours')
                FROM metrics m JOIN organizations o ON o.id = m.org_id
                WHERE m.org_id = \(arguments.orgID) AND m.id = \(arguments.metricID)
                """, logger: logger
            ).collect().first
            guard let row else { return .superseded }
            let (eventName, horizon, cursor, done, version, retentionStart, xmin, end) = try row.decode(
                (String, Int64, Int64?, Bool, Int32, Int64, Int64, Int64).self)
            guard !done, Int(version) == arguments.version else { return .superseded }
            guard xmin >= horizon else { return .waiting }

            // Bounds travel as epoch microseconds (exact), see epoch_us.
            // Where the next slice starts: the first event at or after the cursor.
            let from = cursor ?? retentionStart
            let first: Int64?
            if eventName == "*" {
                first = try await connection.query(
                    """
                    SELECT epoch_us(min("timestamp")) FROM events
                    WHERE org_id = \(arguments.orgID) AND "timestamp" >= from_epoch_us(\(from))
                    """, logger: logger
                ).collect().first?.decode(Int64?.self)
            } else {
                first = try await connection.query(
                    """
                    SELECT epoch_us(min("timestamp")) FROM events
                    WHERE org_id = \(arguments.orgID) AND event_name = \(eventName) AND "timestamp" >= from_epoch_us(\(from))
                      AND event_name_key(org_id, event_name) = event_name_key(\(arguments.orgID), \(eventName))
                    """, logger: logger
                ).collect().first?.decode(Int64?.self)
            }
            guard let start = first, start < end else {
                try await connection.query(
                    """
                    UPDATE metrics SET backfill_done = true, backfill_cursor = from_epoch_us(\(end))
                    WHERE org_id = \(arguments.orgID) AND id = \(arguments.metricID)
                    """, logger: logger)
                return .finished
            }
            // The slice ends before the `sliceEvents`-th next event (or at the end).
            let boundary: Int64?
            if eventName == "*" {
                boundary = try await connection.query(
                    """
                    SELECT epoch_us("timestamp") FROM events
                    WHERE org_id = \(arguments.orgID) AND "timestamp" >= from_epoch_us(\(start))
                    ORDER BY "timestamp" OFFSET \(sliceEvents) LIMIT 1
                    """, logger: logger
                ).collect().first?.decode(Int64.self)
            } else {
                boundary = try await connection.query(
                    """
                    SELECT epoch_us("timestamp") FROM events
                    WHERE org_id = \(arguments.orgID) AND event_name = \(eventName)
                      AND event_name_key(org_id, event_name) = event_name_key(\(arguments.orgID), \(eventName))
                      AND "timestamp" >= from_epoch_us(\(start))
                    ORDER BY "timestamp" OFFSET \(sliceEvents) LIMIT 1
                    """, logger: logger
                ).collect().first?.decode(Int64.self)
            }
            var stop = min(boundary ?? end, end)
            if stop <= start { stop = start + 1_000_000 }  // one instant with more events than a slice

            let rows = try await connection.query(
                """
                SELECT \(unescaped: RollupFolder.deltaColumns)
                FROM (SELECT \(unescaped: RollupFolder.fencedColumns) FROM rollup_matches
                      WHERE org_id = \(arguments.orgID) AND metric_id = \(arguments.metricID)
                        AND "timestamp" >= from_epoch_us(\(start)) AND "timestamp" < from_epoch_us(\(stop))
                        AND (\(eventName) = '*' OR name_key = event_name_key(\(arguments.orgID), \(eventName)))
                        AND (ingest_xid IS NULL OR ingest_xid < horizon_xid) OFFSET 0) r
                \(unescaped: RollupFolder.deltaGrouping)
                """, logger: logger)
            let deltas = try await RollupFolder.decodeDeltas(rows)
            let touched = try await RollupFolder.fold(deltas, on: connection, logger: logger)
            try await RollupFolder.notify(touched, on: connection, logger: logger)
            let finished = stop >= end
            try await connection.query(
                """
                UPDATE metrics SET backfill_cursor = from_epoch_us(\(stop)), backfill_done = \(finished)
                WHERE org_id = \(arguments.orgID) AND id = \(arguments.metricID)
                """, logger: logger)
            return finished ? .finished : .sliced
        }
    }
}
