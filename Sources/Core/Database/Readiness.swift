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
        let result: Status? = await withTaskGroup(of: Status?.self) { group in
            group.addTask {
                do {
                    let rows = try await client.query(
                        "SELECT coalesce(max(version), '') FROM schema_migrations", logger: logger)
                    var applied = ""
                    for try await version in rows.decode(String.self) { applied = version }
                    return applied >= latest ? .ready : .migrationsPending(applied: applied)
                } catch let error as PSQLError where error.serverInfo?[.sqlState] == "42P01" {
                    return .migrationsPending(applied: "")
                } catch {
                    return .databaseUnreachable
                }
            }
            group.addTask {
                try? await Task.sleep(for: timeout)
                return nil
            }
            let first = await group.next() ?? nil
            group.cancelAll()
            return first
        }
        return result ?? .databaseUnreachable
    }
}
