import Foundation
import Logging
import PostgresNIO

/// Events per name per local day over [start, end), exact to the event (`GET /api/events/stats`).
///
/// Counting raw rows took 25 s over a month of 70 M events. The built-in `events_by_name`
/// metric already holds these counts per minute, hour and UTC day, final for every row
/// below the rollup watermark (migration 0007). So, in one snapshot: whole minutes come
/// from those rollups (the coarsest buckets that tile each local day), and raw rows only
/// from what they cannot hold — the rows not folded yet and the partial minutes at the
/// range's ends. Until the organization's backfill is done, or when a local day does not
/// start on a minute, everything is counted from raw rows.
public struct EventDayCounts: Sendable {
    public struct Count: Sendable, Equatable {
        public let event: String
        public let day: String
        public let count: Int64
    }

    public enum Source: Sendable, Equatable {
        case rollups
        case raw
    }

    /// A span of whole buckets of one granularity that lies in one local day.
    struct Piece: Equatable {
        let granularity: Granularity
        let from: Date
        let to: Date
        let day: String
    }

    let client: PostgresClient

    public init(client: PostgresClient) {
        self.client = client
    }

    /// - Parameter timeZone: an IANA name; one PostgreSQL does not know is `.invalidField`.
    public func counts(
        orgID: UUID, start: Date, end: Date, timeZone: String, names: [String], logger: Logger
    ) async throws -> (counts: [Count], source: Source) {
        do {
            return try await client.withTransaction(logger: logger) { connection in
                // One snapshot: the watermark, the rollups and the raw rows agree.
                try await connection.query("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY", logger: logger)
                if let plan = try await plan(orgID: orgID, start: start, end: end, timeZone: timeZone, on: connection, logger: logger) {
                    let counts = try await rollupCounts(
                        orgID: orgID, plan: plan, start: start, end: end, timeZone: timeZone, names: names,
                        on: connection, logger: logger)
                    return (counts, .rollups)
                }
                let counts = try await rawCounts(
                    orgID: orgID, start: start, end: end, timeZone: timeZone, names: names, on: connection, logger: logger)
                return (counts, .raw)
            }
        } catch let error as PostgresTransactionError
            where (error.closureError as? PSQLError)?.serverInfo?[.sqlState] == "22023"
        {
            throw AppError(.invalidField, "'tz' must be an IANA time zone PostgreSQL knows, such as Europe/Berlin")
        }
    }

    struct Plan {
        let metricID: UUID
        /// Rows at or above this transaction id are in no rollup yet.
        let freshFrom: Int64
        /// Whole minutes [wholeStart, wholeEnd) come from `pieces` (plus fresh rows).
        let wholeStart: Date
        let wholeEnd: Date
        let pieces: [Piece]
    }

    /// nil: count raw rows.
    func plan(orgID: UUID, start: Date, end: Date, timeZone: String, on connection: PostgresConnection, logger: Logger)
        async throws -> Plan?
    {
        // Rows below the watermark are folded by fresh runs when at or above the metric's
        // horizon, and by its backfill when below it: with the backfill done, every row
        // below max(watermark, horizon) is in the rollups, and no row above it.
        guard
            let (metricID, freshFrom) = try await connection.query(
                """
                SELECT m.id, greatest(m.horizon_xid, s.watermark)
                FROM metrics m, rollup_state s
                WHERE m.org_id = \(orgID) AND m.builtin = 'events_by_name' AND m.backfill_done AND s.shard = 0
                """, logger: logger
            ).collect().first?.decode((UUID, Int64).self)
        else { return nil }
        // Local midnights from PostgreSQL's own zone data, so that they agree with the day
        // its raw rows are put in; `exact` is false where midnight falls in a DST gap.
        var midnights: [(day: String, at: Date)] = []
        for try await (day, at, exact) in try await connection.query(
            """
            SELECT to_char(d, 'YYYY-MM-DD'), m.at,
                   (m.at AT TIME ZONE \(timeZone))::date = d::date
                   AND ((m.at - interval '1 microsecond') AT TIME ZONE \(timeZone))::date < d::date
            FROM generate_series(((\(start)::timestamptz AT TIME ZONE \(timeZone))::date)::timestamp,
                                 ((\(end)::timestamptz AT TIME ZONE \(timeZone))::date + 1)::timestamp,
                                 interval '1 day') AS d,
                 LATERAL (SELECT d AT TIME ZONE \(timeZone) AS at) m
            """, logger: logger
        ).decode((String, Date, Bool).self) {
            guard exact else { return nil }
            midnights.append((day, at))
        }
        let wholeStart = Granularity.minute.ceiling(of: start), wholeEnd = Granularity.minute.bucket(of: end)
        guard let pieces = Self.pieces(wholeStart: wholeStart, wholeEnd: wholeEnd, midnights: midnights) else { return nil }
        return Plan(metricID: metricID, freshFrom: freshFrom, wholeStart: wholeStart, wholeEnd: wholeEnd, pieces: pieces)
    }

    /// The rollup buckets that tile [wholeStart, wholeEnd) day by local day; nil when the
    /// span is empty or a local day inside it does not start on a whole minute.
    static func pieces(wholeStart: Date, wholeEnd: Date, midnights: [(day: String, at: Date)]) -> [Piece]? {
        guard wholeStart < wholeEnd else { return nil }
        var pieces: [Piece] = []
        for (index, midnight) in midnights.enumerated() {
            let next = index + 1 < midnights.count ? midnights[index + 1].at : Date.distantFuture
            let low = max(midnight.at, wholeStart), high = min(next, wholeEnd)
            guard low < high else { continue }
            guard Granularity.minute.bucket(of: low) == low, Granularity.minute.bucket(of: high) == high else { return nil }
            let cover = RollupReader.cover(start: low, end: high)
            for (granularity, from, to) in [
                (Granularity.day, cover.days.0, cover.days.1),
                (.hour, cover.hours.0, cover.hours.1), (.hour, cover.hours.2, cover.hours.3),
                (.minute, cover.minutes.0, cover.minutes.1), (.minute, cover.minutes.2, cover.minutes.3),
            ] where from < to {
                pieces.append(Piece(granularity: granularity, from: from, to: to, day: midnight.day))
            }
        }
        // Midnights run from the start's day to past the end's, so they cover the span.
        return pieces
    }

    func rollupCounts(
        orgID: UUID, plan: Plan, start: Date, end: Date, timeZone: String, names: [String],
        on connection: PostgresConnection, logger: Logger
    ) async throws -> [Count] {
        let groups = names.map { "=" + $0 }
        // Three parts, each on its own index: rollup rows by key; the partial minutes at
        // the ends by time; rows not folded yet by transaction id (few while rollups keep up).
        let rows = try await connection.query(
            """
            SELECT name, day, sum(n)::int8 FROM (
                SELECT substr(r.group_value, 2), p.day, r.count
                FROM unnest(\(plan.pieces.map(\.granularity.rawValue))::text[], \(plan.pieces.map(\.from))::timestamptz[],
                            \(plan.pieces.map(\.to))::timestamptz[], \(plan.pieces.map(\.day))::text[]) AS p(g, f, t, day)
                JOIN rollups r ON r.org_id = \(orgID) AND r.metric_id = \(plan.metricID) AND r.granularity = p.g
                              AND r.bucket_start >= p.f AND r.bucket_start < p.t
                WHERE r.group_value <> '' AND (\(names.isEmpty) OR r.group_value = ANY(\(groups)::text[]))
                UNION ALL
                SELECT event_name, to_char(("timestamp" AT TIME ZONE \(timeZone))::date, 'YYYY-MM-DD'), 1
                FROM events
                WHERE org_id = \(orgID) AND (\(names.isEmpty) OR event_name = ANY(\(names)::text[]))
                  AND (("timestamp" >= \(start) AND "timestamp" < \(plan.wholeStart))
                       OR ("timestamp" >= \(plan.wholeEnd) AND "timestamp" < \(end)))
                UNION ALL
                SELECT event_name, to_char(("timestamp" AT TIME ZONE \(timeZone))::date, 'YYYY-MM-DD'), 1
                FROM events
                WHERE org_id = \(orgID) AND (\(names.isEmpty) OR event_name = ANY(\(names)::text[]))
                  AND "timestamp" >= \(plan.wholeStart) AND "timestamp" < \(plan.wholeEnd) AND ingest_xid >= \(plan.freshFrom)
            ) x(name, day, n)
            GROUP BY 1, 2 ORDER BY 2, 1
            """, logger: logger)
        return try await Self.decode(rows)
    }

    func rawCounts(
        orgID: UUID, start: Date, end: Date, timeZone: String, names: [String], on connection: PostgresConnection,
        logger: Logger
    ) async throws -> [Count] {
        let rows = try await connection.query(
            """
            SELECT event_name, to_char(("timestamp" AT TIME ZONE \(timeZone))::date, 'YYYY-MM-DD'), count(*)::int8
            FROM events
            WHERE org_id = \(orgID) AND "timestamp" >= \(start) AND "timestamp" < \(end)
              AND (\(names.isEmpty)
                   OR (event_name_key(org_id, event_name) = ANY(event_name_keys(\(orgID), \(names)::text[]))
                       AND event_name = ANY(\(names)::text[])))
            GROUP BY 1, 2 ORDER BY 2, 1
            """, logger: logger)
        return try await Self.decode(rows)
    }

    static func decode(_ rows: PostgresRowSequence) async throws -> [Count] {
        var counts: [Count] = []
        for try await (name, day, count) in rows.decode((String, String, Int64).self) where count > 0 {
            counts.append(Count(event: name, day: day, count: count))
        }
        return counts
    }
}
