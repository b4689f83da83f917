import Core
import Logging
import PostgresNIO
import TestSupport
import Testing

@Suite struct MigratorTests {
    let logger = Logger(label: "test.migrator")

    @Test func appliesEverythingOnAnEmptyDatabaseThenNothing() async throws {
        let url = try await TestPostgres.shared.makeDatabase(migrated: false)
        let logger = self.logger
        try await url.withConnection(logger: logger) { connection in
            let first = try await Migrator().migrate(on: connection, logger: logger)
            #expect(first == Migrator.bundled.map(\.version))
            #expect(!first.isEmpty)
            let second = try await Migrator().migrate(on: connection, logger: logger)
            #expect(second.isEmpty)
            let tables = try await connection.query(
                "SELECT count(*)::int FROM pg_tables WHERE schemaname = 'public' AND tablename = ANY(\(Self.expectedTables))",
                logger: logger
            ).collect().first?.decode(Int.self)
            #expect(tables == Self.expectedTables.count)
        }
    }

    static let expectedTables = [
        "organizations", "users", "memberships", "api_keys", "events", "metrics", "rollups", "dashboards",
        "alerts", "alert_events", "report_schedules", "exports", "usage_periods", "audit_log",
    ]

    @Test func tenantKeysStartWithOrgID() async throws {
        try await withTestDatabase { client, _ in
            // Every primary key and unique index on a table with org_id starts with org_id
            // (what distributing by org_id requires), except the API key hash lookup,
            // which happens before the organization is known. The job queue and cron schedules are not tenant
            // tables: their org_id only tags rows, and they stay on the coordinator.
            let offenders = try await client.query(
                """
                SELECT i.indexrelid::regclass::text
                FROM pg_index i
                JOIN pg_class t ON t.oid = i.indrelid
                JOIN pg_namespace n ON n.oid = t.relnamespace AND n.nspname = 'public'
                WHERE EXISTS (SELECT 1 FROM pg_attribute a WHERE a.attrelid = t.oid AND a.attname = 'org_id')
                  AND t.relkind IN ('r', 'p') AND i.indisunique AND t.relname NOT IN ('jobs', 'cron_schedules')
                  AND (SELECT attname FROM pg_attribute WHERE attrelid = t.oid AND attnum = i.indkey[0]) IS DISTINCT FROM 'org_id'
                  AND i.indexrelid::regclass::text <> 'api_keys_key_hash_key'
                """, logger: logger
            ).collect().map { try $0.decode(String.self) }
            #expect(offenders.isEmpty, "keys not led by org_id: \(offenders)")
        }
    }

    @Test func concurrentMigratorsApplyEachMigrationOnce() async throws {
        let url = try await TestPostgres.shared.makeDatabase(migrated: false)
        let logger = self.logger
        let results = try await withThrowingTaskGroup(of: [String].self) { group in
            for _ in 0..<4 {
                group.addTask {
                    try await url.withConnection(logger: logger) { connection in
                        try await Migrator().migrate(on: connection, logger: logger)
                    }
                }
            }
            return try await group.reduce(into: [[String]]()) { $0.append($1) }
        }
        #expect(results.flatMap { $0 }.sorted() == Migrator.bundled.map(\.version).sorted())
        let recorded = try await url.withConnection(logger: logger) { connection in
            try await Migrator.appliedVersions(on: connection, logger: logger)
        }
        #expect(recorded == Migrator.bundled.map(\.version))
    }

    @Test func aFailingMigrationLeavesNothingBehind() async throws {
        let url = try await TestPostgres.shared.makeDatabase(migrated: false)
        let logger = self.logger
        let broken = Migrator(migrations: [
            Migration(version: "0001_ok", sql: "CREATE TABLE good (id int);"),
            Migration(version: "0002_bad", sql: "CREATE TABLE half (id int); SELECT * FROM missing_table;"),
        ])
        try await url.withConnection(logger: logger) { connection in
            await #expect(throws: MigrationError.self) {
                try await broken.migrate(on: connection, logger: logger)
            }
            #expect(try await Migrator.appliedVersions(on: connection, logger: logger) == ["0001_ok"])
            let half = try await connection.query("SELECT to_regclass('half') IS NULL", logger: logger)
                .collect().first?.decode(Bool.self)
            #expect(half == true)
        }
    }
}
