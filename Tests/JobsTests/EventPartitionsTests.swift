import Core
import Foundation
import Jobs
import Logging
import PostgresNIO
import TestSupport
import Testing

@Suite struct EventPartitionsTests {
    let logger = Logger(label: "test.partitions")

    func date(_ text: String) -> Date { ISO8601DateFormatter().date(from: text)! }

    @Test func createsMonthsAheadAndMovesRowsOutOfTheDefaultPartition() async throws {
        try await withTestDatabase { client, _ in
            let org = try await OrganizationStore(client: client).create(name: "P", tier: .starter, logger: logger)
            // Before any partition exists, events land in the default partition.
            try await client.query(
                """
                INSERT INTO events (org_id, event_name, "timestamp")
                VALUES (\(org.orgID), 'early', '2026-12-15T10:00:00Z'), (\(org.orgID), 'far', '2027-08-01T00:00:00Z')
                """, logger: logger)
            let partitions = EventPartitions(client: client)
            let created = try await partitions.ensure(now: date("2026-11-20T00:00:00Z"), logger: logger)
            #expect(created == ["events_p202610", "events_p202611", "events_p202612", "events_p202701", "events_p202702"])
            // The December row moved into its partition; the August one waits in default.
            #expect(try await client.scalar("SELECT count(*)::int FROM events_p202612", as: Int.self) == 1)
            #expect(try await client.scalar("SELECT count(*)::int FROM events_default", as: Int.self) == 1)
            #expect(try await client.scalar("SELECT count(*)::int FROM events", as: Int.self) == 2)
            // Idempotent.
            #expect(try await partitions.ensure(now: date("2026-11-20T00:00:00Z"), logger: logger).isEmpty)
        }
    }

    @Test func concurrentUpkeepCreatesEachPartitionOnce() async throws {
        try await withTestDatabase { client, _ in
            let partitions = EventPartitions(client: client)
            let logger = self.logger
            let now = date("2026-11-20T00:00:00Z")
            let results = try await withThrowingTaskGroup(of: [String].self) { group in
                for _ in 0..<3 { group.addTask { try await partitions.ensure(now: now, logger: logger) } }
                return try await group.reduce(into: [String]()) { $0 += $1 }
            }
            #expect(results.sorted() == ["events_p202610", "events_p202611", "events_p202612", "events_p202701", "events_p202702"])
        }
    }

    @Test func dropsPartitionsPastTheLongestRetention() async throws {
        try await withTestDatabase { client, _ in
            let org = try await OrganizationStore(client: client).create(name: "R", tier: .starter, logger: logger)
            try await client.query("UPDATE organizations SET retention_days = 30 WHERE id = \(org.orgID)", logger: logger)
            let partitions = EventPartitions(client: client)
            try await partitions.ensure(now: date("2026-06-10T00:00:00Z"), logger: logger)  // May..Sep
            try await client.query(
                """
                INSERT INTO events (org_id, event_name, "timestamp")
                VALUES (\(org.orgID), 'old', '2026-06-01T00:00:00Z'), (\(org.orgID), 'new', '2026-07-20T00:00:00Z')
                """, logger: logger)
            let dropped = try await partitions.dropExpired(now: date("2026-08-01T00:00:00Z"), logger: logger)
            #expect(dropped == ["events_p202605", "events_p202606"])
            #expect(try await client.scalar("SELECT string_agg(event_name, ',') FROM events", as: String.self) == "new")
        }
    }

    /// A shorter retention than the partitions keep is enforced row by row, for events
    /// and for the client ids that make retries idempotent; other organizations keep theirs.
    @Test func deletesRowsAndClientIDsPastEachOrganizationsRetention() async throws {
        try await withTestDatabase { client, _ in
            let store = OrganizationStore(client: client)
            let short = try await store.create(name: "Short", tier: .starter, logger: logger)
            let long = try await store.create(name: "Long", tier: .starter, logger: logger)
            try await client.query("UPDATE organizations SET retention_days = 30 WHERE id = \(short.orgID)", logger: logger)
            try await client.query("UPDATE organizations SET retention_days = 400 WHERE id = \(long.orgID)", logger: logger)
            let partitions = EventPartitions(client: client)
            try await partitions.ensure(now: date("2026-06-10T00:00:00Z"), logger: logger)
            try await client.query(
                """
                INSERT INTO events (org_id, event_name, "timestamp") VALUES
                    (\(short.orgID), 'short-old', '2026-06-01T00:00:00Z'), (\(short.orgID), 'short-new', '2026-07-20T00:00:00Z'),
                    (\(long.orgID), 'long-old', '2026-06-01T00:00:00Z')
                """, logger: logger)
            try await client.query(
                """
                INSERT INTO event_ids (org_id, id, "timestamp") VALUES
                    (\(short.orgID), gen_random_uuid(), '2026-06-01T00:00:00Z'), (\(short.orgID), gen_random_uuid(), '2026-07-20T00:00:00Z'),
                    (\(long.orgID), gen_random_uuid(), '2026-06-01T00:00:00Z')
                """, logger: logger)
            let dropped = try await partitions.dropExpired(now: date("2026-08-01T00:00:00Z"), logger: logger)
            #expect(dropped.isEmpty)
            #expect(
                try await client.scalar("SELECT string_agg(event_name, ',' ORDER BY event_name) FROM events", as: String.self)
                    == "long-old,short-new")
            #expect(try await client.scalar("SELECT count(*)::int FROM event_ids WHERE org_id = \(short.orgID)", as: Int32.self) == 1)
            #expect(try await client.scalar("SELECT count(*)::int FROM event_ids WHERE org_id = \(long.orgID)", as: Int32.self) == 1)
        }
    }
}
