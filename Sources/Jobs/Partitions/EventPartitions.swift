import Foundation
import Logging
import PostgresNIO

/// Keeps the `events` table's monthly partitions ahead of time and drops those past
/// every organization's retention.
///
/// Rows that landed in `events_default` (a time no partition covered yet) are moved
/// into the new partition in the same transaction that attaches it, so nothing is
/// lost and the default partition stays small.
public struct EventPartitions: Sendable {
    public let client: PostgresClient
    /// Months created ahead of the current one.
    public var monthsAhead = 3
    /// Months kept behind the current one even when retention is shorter (late data).
    public var monthsBehind = 1

    public init(client: PostgresClient) {
        self.client = client
    }

    /// A month's partition: its table name and bounds, computed from a date, never from input.
    public struct Month: Sendable, Equatable {
        public let year: Int
        public let month: Int

        public var tableName: String { String(format: "events_p%04d%02d", year, month) }
        public var lowerBound: String { String(format: "%04d-%02d-01 00:00:00+00", year, month) }
        public var upperBound: String { next.lowerBound }
        public var next: Month { month == 12 ? Month(year: year + 1, month: 1) : Month(year: year, month: month + 1) }
        public var previous: Month { month == 1 ? Month(year: year - 1, month: 12) : Month(year: year, month: month - 1) }

        public init(year: Int, month: Int) {
            self.year = year
            self.month = month
        }

        public init(containing date: Date) {
            var calendar = Calendar(identifier: .gregorian)
            calendar.timeZone = TimeZone(identifier: "UTC")!
            let parts = calendar.dateComponents([.year, .month], from: date)
            self.init(year: parts.year!, month: parts.month!)
        }
    }

    /// Creates missing partitions from `monthsBehind` before `now` to `monthsAhead` after.
    /// - Returns: the partitions created.
    @discardableResult
    public func ensure(now: Date = Date(), logger: Logger) async throws -> [String] {
        var month = Month(containing: now)
        for _ in 0..<monthsBehind { month = month.previous }
        let existing = try await existingPartitions(logger: logger)
        var created: [String] = []
        for _ in 0...(monthsBehind + monthsAhead) {
            if !existing.contains(month.tableName), try await create(month, logger: logger) {
                created.append(month.tableName)
            }
            month = month.next
        }
        return created
    }

    /// Drops partitions whose whole range is older than the longest retention of any
    /// organization; shorter retentions are enforced by deleting that organization's rows.
    /// - Returns: the partitions dropped.
    @discardableResult
    public func dropExpired(now: Date = Date(), logger: Logger) async throws -> [String] {
        let longest = try await client.query(
            "SELECT coalesce(max(retention_days), 0) FROM organizations", logger: logger
        ).collect().first?.decode(Int.self) ?? 0
        guard longest > 0 else { return [] }
        let cutoff = now.addingTimeInterval(-Double(longest) * 86_400)
        var dropped: [String] = []
        for name in try await existingPartitions(logger: logger).sorted() {
            guard let month = Self.month(fromTableName: name), month.next.startDate <= cutoff else { continue }
            try await client.query("DROP TABLE IF EXISTS \(unescaped: name)", logger: logger)
            dropped.append(name)
        }
        // Organizations with a shorter retention than the partition layout keeps. One
        // statement per organization, so each is pruned to the partitions below its
        // cutoff and walks the primary key (org_id, timestamp): the joined form scanned
        // every row of every partition, hourly, on every API node.
        var retentions: [(UUID, Int32)] = []
        for try await row in try await client.query(
            "SELECT id, retention_days FROM organizations", logger: logger
        ).decode((UUID, Int32).self) {
            retentions.append(row)
        }
        for (orgID, days) in retentions {
            try await client.query(
                """
                DELETE FROM events WHERE org_id = \(orgID) AND "timestamp" < \(now) - make_interval(days => \(days))
                """, logger: logger)
            // Client ids are remembered for the retention window only: an event that old
            // is refused at ingestion anyway, so its id can no longer make a duplicate.
            try await client.query(
                """
                DELETE FROM event_ids WHERE org_id = \(orgID) AND "timestamp" < \(now) - make_interval(days => \(days))
                """, logger: logger)
        }
        return dropped
    }

    func existingPartitions(logger: Logger) async throws -> Set<String> {
        var names: Set<String> = []
        let rows = try await client.query(
            """
            SELECT c.relname FROM pg_inherits i
            JOIN pg_class c ON c.oid = i.inhrelid
            WHERE i.inhparent = 'events'::regclass AND c.relname <> 'events_default'
            """, logger: logger)
        for try await name in rows.decode(String.self) { names.insert(name) }
        return names
    }

    /// - Returns: false when another process created it first.
    func create(_ month: Month, logger: Logger) async throws -> Bool {
        let table = month.tableName, lower = month.lowerBound, upper = month.upperBound
        do {
            return try await client.withTransaction(logger: logger) { connection in
                // Serialise with other processes doing the same upkeep.
                try await connection.query("SELECT pg_advisory_xact_lock(\(Int64(0x61_70_70_61_72_74)))", logger: logger)
                let exists = try await connection.query(
                    "SELECT to_regclass(\(table)) IS NOT NULL", logger: logger
                ).collect().first?.decode(Bool.self) ?? false
                if exists { return false }
                logger.info("creating events partition", metadata: ["partition": "\(table)"])
                try await connection.query(
                    "CREATE TABLE \(unescaped: table) (LIKE events INCLUDING DEFAULTS INCLUDING CONSTRAINTS)",
                    logger: logger)
                try await connection.query(
                    """
                    WITH moved AS (
                        DELETE FROM events_default
                        WHERE "timestamp" >= \(unescaped: "'\(lower)'") AND "timestamp" < \(unescaped: "'\(upper)'")
                        RETURNING *
                    )
                    INSERT INTO \(unescaped: table) SELECT * FROM moved
                    """, logger: logger)
                try await connection.query(
                    """
                    ALTER TABLE events ATTACH PARTITION \(unescaped: table)
                    FOR VALUES FROM (\(unescaped: "'\(lower)'")) TO (\(unescaped: "'\(upper)'"))
                    """, logger: logger)
                return true
            }
        } catch let error as PostgresTransactionError {
            throw error.closureError ?? error.commitError ?? error
        }
    }

    static func month(fromTableName name: String) -> Month? {
        guard name.hasPrefix("events_p"), name.count == 14,
            let year = Int(name.dropFirst(8).prefix(4)), let month = Int(name.suffix(2))
        else { return nil }
        return Month(year: year, month: month)
    }
}

extension EventPartitions.Month {
    var startDate: Date {
        var calendar = Calendar(identifier: .gregorian)
        calendar.timeZone = TimeZone(identifier: "UTC")!
        return calendar.date(from: DateComponents(year: year, month: month, day: 1))!
    }
}
