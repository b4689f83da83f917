import ArgumentParser
import Core
import Logging
import PostgresNIO

/// The database a command works on: prepared (embedded cluster started if needed),
/// migrated, and torn down when the command ends.
struct DatabaseSession {
    let setup: DatabaseSetup
    let logger: Logger

    /// Prepares the database and applies pending migrations.
    static func open(_ configuration: AppConfiguration, logger: Logger) async throws -> DatabaseSession {
        let setup: DatabaseSetup
        do {
            setup = try DatabaseSetup.prepare(configuration, logger: logger)
        } catch {
            throw CLIFailure.runtime("\(error)")
        }
        let session = DatabaseSession(setup: setup, logger: logger)
        do {
            try await setup.url.withConnection(logger: logger) { connection in
                try await Migrator().migrate(on: connection, logger: logger)
            }
        } catch {
            session.close()
            throw CLIFailure.runtime("database \(setup.url.displayName): \(Self.describe(error))")
        }
        return session
    }

    /// Runs `body` with a pooled client that lives for its duration.
    func withClient<T: Sendable>(_ body: @Sendable (PostgresClient) async throws -> T) async throws -> T {
        let client = setup.makeClient()
        return try await withThrowingTaskGroup(of: T?.self) { group in
            group.addTask {
                await client.run()
                return nil
            }
            defer { group.cancelAll() }
            return try await body(client)
        }
    }

    func close() {
        setup.shutdown(logger: logger)
    }

    /// A one-line reason: the server's message for PostgreSQL errors, not a dump.
    static func describe(_ error: any Error) -> String {
        if let error = error as? PSQLError {
            if let message = error.serverInfo?[.message] { return message }
            switch error.code {
            case .connectionError: return "cannot connect (is the server running and reachable?)"
            default: return "\(error.code)"
            }
        }
        return "\(error)"
    }
}

extension DatabaseURL {
    /// Where the database is, without credentials.
    var displayName: String {
        switch endpoint {
        case .tcp(let host, let port): "\(host):\(port)/\(database)"
        case .unixSocket(let path): "\(path) (\(database))"
        }
    }
}
