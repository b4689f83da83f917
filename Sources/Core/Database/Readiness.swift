import Logging
import PostgresNIO

/// Whether the database answers and carries the schema this binary expects.
public enum Readiness {
    public enum Status: Sendable, Equatable {
        case ready
        case databaseUnreachable
        case migrationsPending(applied: String)
    }

    /// Checks within `timeout`; a database that hangs counts as unreachable.
    public static func check(client: PostgresClient, timeout: Duration = .seconds(2), logger: Logger) async -> Status {
        let latest = Migrator.latestVersion
        // withDeadline, not a task group: a group waits for its children, and a query
        // postgres-nio lost on a closed connection would hold the probe for good.
        do {
            return try await withDeadline(timeout) {
                do {
                    let rows = try await client.query(
                        "SELECT coalesce(max(version), '') FROM schema_migrations", logger: logger)
                    var applied = ""
                    for try await version in rows.decode(String.self) { applied = version }
                    return applied >= latest ? .ready : .migrationsPending(applied: applied)
                } catch let error as PSQLError where error.serverInfo?[.sqlState] == "42P01" {
                    return .migrationsPending(applied: "")
                }
            }
        } catch {
            return .databaseUnreachable
        }
    }
}
