import Foundation
import Logging
import NIOPosix
import PostgresNIO

/// Which database a command uses, and whether the command started it.
///
/// With `DATABASE_URL` set, that database and nothing else. Without it, the embedded
/// cluster of the state folder: connected to when it already runs, started otherwise.
public struct DatabaseSetup: Sendable {
    public let url: DatabaseURL
    public let embedded: EmbeddedPostgres?
    /// True when this process started the embedded server and must stop it on exit.
    public let ownsServer: Bool

    public static func prepare(_ configuration: AppConfiguration, logger: Logger) throws -> DatabaseSetup {
        if let url = configuration.databaseURL {
            return DatabaseSetup(url: url, embedded: nil, ownsServer: false)
        }
        let cluster = try EmbeddedPostgres(stateDirectory: configuration.stateDirectory)
        let started = try cluster.start(logger: logger)
        return DatabaseSetup(url: cluster.databaseURL, embedded: cluster, ownsServer: started)
    }

    /// Stops the embedded server if this process started it.
    public func shutdown(logger: Logger) {
        if ownsServer { embedded?.stop(logger: logger) }
    }

    /// A pooled client for this database (run it with `client.run()`).
    public func makeClient(maximumConnections: Int = 20) -> PostgresClient {
        var configuration = url.clientConfiguration
        configuration.options.maximumConnections = maximumConnections
        configuration.options.connectTimeout = .seconds(5)
        return PostgresClient(configuration: configuration, backgroundLogger: Logger(label: "postgres"))
    }
}

extension DatabaseURL {
    /// Opens one connection, outside any pool (migrations, LISTEN, administrative work).
    public func connect(logger: Logger) async throws -> PostgresConnection {
        var configuration = connectionConfiguration
        configuration.options.connectTimeout = .seconds(5)
        return try await PostgresConnection.connect(
            on: MultiThreadedEventLoopGroup.singleton.any(),
            configuration: configuration,
            id: Int.random(in: 1...Int(Int32.max)),
            logger: logger)
    }

    /// Runs `body` with a fresh connection, closed afterwards.
    public func withConnection<T: Sendable>(
        logger: Logger, _ body: @Sendable (PostgresConnection) async throws -> T
    ) async throws -> T {
        let connection = try await connect(logger: logger)
        do {
            let value = try await body(connection)
            try? await connection.close()
            return value
        } catch {
            try? await connection.close()
            throw error
        }
    }
}
