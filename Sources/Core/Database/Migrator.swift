import Foundation
import Logging
import PostgresNIO

/// One schema change: a plain SQL file, applied once, in its own transaction.
public struct Migration: Sendable, Equatable {
    /// The file name without `.sql`, e.g. `0001_foundation`; migrations apply in this order.
    public let version: String
    public let sql: String

    public init(version: String, sql: String) {
        self.version = version
        self.sql = sql
    }
}

/// Applies the bundled migrations in order, under an advisory lock, so any number of
/// processes may start together: the first applies them, the others wait and find
/// nothing left to do.
public struct Migrator: Sendable {
    /// `pg_advisory_lock` key shared by every AnalyticsPro process ("apmigr" in ASCII).
    static let lockKey: Int64 = 0x61_70_6d_69_67_72
    public let migrations: [Migration]

    public init(migrations: [Migration] = Migrator.bundled) {
        self.migrations = migrations.sorted { $0.version < $1.version }
    }

    /// The version the schema has once every bundled migration is applied.
    public static var latestVersion: String { bundled.last?.version ?? "" }

    /// The migrations shipped in this binary's resource bundle.
    public static let bundled: [Migration] = {
        guard let folder = Bundle.module.url(forResource: "Migrations", withExtension: nil),
            let files = try? FileManager.default.contentsOfDirectory(at: folder, includingPropertiesForKeys: nil)
        else { return [] }
        return files.filter { $0.pathExtension == "sql" }
            .compactMap { url in
                guard let sql = try? String(contentsOf: url, encoding: .utf8) else { return nil }
                return Migration(version: url.deletingPathExtension().lastPathComponent, sql: sql)
            }
            .sorted { $0.version < $1.version }
    }()

    /// Applies what is missing and returns the versions applied by this call.
    @discardableResult
    public func migrate(on connection: PostgresConnection, logger: Logger) async throws -> [String] {
        try await connection.query("SELECT pg_advisory_lock(\(Self.lockKey))", logger: logger)
        do {
            let applied = try await apply(on: connection, logger: logger)
            try await connection.query("SELECT pg_advisory_unlock(\(Self.lockKey))", logger: logger)
            return applied
        } catch {
            // The lock is per session: closing the connection would also release it.
            _ = try? await connection.query("SELECT pg_advisory_unlock(\(Self.lockKey))", logger: logger)
            throw error
        }
    }

    /// Versions recorded as applied, in order.
    public static func appliedVersions(on connection: PostgresConnection, logger: Logger) async throws -> [String] {
        let exists = try await connection.query(
            "SELECT to_regclass('schema_migrations') IS NOT NULL", logger: logger
        ).collect().first?.decode(Bool.self) ?? false
        guard exists else { return [] }
        var versions: [String] = []
        for try await version in try await connection.query(
            "SELECT version FROM schema_migrations ORDER BY version", logger: logger
        ).decode(String.self) {
            versions.append(version)
        }
        return versions
    }

    private func apply(on connection: PostgresConnection, logger: Logger) async throws -> [String] {
        try await connection.query(
            """
            CREATE TABLE IF NOT EXISTS schema_migrations (
                version text PRIMARY KEY,
                applied_at timestamptz NOT NULL DEFAULT now()
            )
            """, logger: logger)
        let done = Set(try await Self.appliedVersions(on: connection, logger: logger))
        let pending = migrations.filter { !done.contains($0.version) }
        guard !pending.isEmpty else { return [] }
        // The extended protocol runs one statement per query; a PL/pgSQL EXECUTE runs a
        // whole file, and takes it as a bound parameter rather than spliced text.
        try await connection.query(
            """
            CREATE OR REPLACE FUNCTION pg_temp.analyticspro_execute(sql text) RETURNS void
            LANGUAGE plpgsql AS $$ BEGIN EXECUTE sql; END $$
            """, logger: logger)
        var applied: [String] = []
        for migration in pending {
            logger.info("applying migration", metadata: ["version": "\(migration.version)"])
            do {
                try await connection.withTransaction(logger: logger) { transaction in
                    try await transaction.query("SELECT pg_temp.analyticspro_execute(\(migration.sql))", logger: logger)
                    try await transaction.query(
                        "INSERT INTO schema_migrations (version) VALUES (\(migration.version))", logger: logger)
                }
            } catch let error as PostgresTransactionError {
                throw MigrationError(version: migration.version, underlying: error.closureError ?? error.commitError ?? error)
            }
            applied.append(migration.version)
        }
        return applied
    }
}

/// A migration failed; nothing of it was applied.
public struct MigrationError: Error, CustomStringConvertible {
    public let version: String
    public let underlying: any Error

    public var description: String {
        let detail = (underlying as? PSQLError)?.serverInfo?[.message] ?? String(describing: underlying)
        return "migration \(version) failed: \(detail)"
    }
}
