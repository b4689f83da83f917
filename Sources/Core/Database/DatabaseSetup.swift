import Foundation
import Logging
import NIOConcurrencyHelpers
import NIOPosix
import PostgresNIO

/// Which database a command uses, and whether the command started it.
///
/// With `DATABASE_URL` set, that database and nothing else. Without it, the embedded
/// cluster of the state folder: connected to when it already runs, started otherwise.
public struct DatabaseSetup: Sendable {
    public let url: DatabaseURL
    public let embedded: EmbeddedPostgres?
    /// The embedded server this process started, if any (`EmbeddedClusterKeeper` may
    /// start it later): this process stops that server on exit.
    public let ownership: EmbeddedOwnership

    /// True when this process started the embedded server and must stop it on exit.
    public var ownsServer: Bool { ownership.startedPID != nil }

    public static func prepare(_ configuration: AppConfiguration, logger: Logger) throws -> DatabaseSetup {
        if let url = configuration.databaseURL {
            return DatabaseSetup(url: url, embedded: nil, ownership: EmbeddedOwnership())
        }
        let cluster = try EmbeddedPostgres(stateDirectory: configuration.stateDirectory)
        let ownership = EmbeddedOwnership()
        if try cluster.start(logger: logger) { ownership.started(cluster.postmasterPID() ?? 0) }
        return DatabaseSetup(url: cluster.databaseURL, embedded: cluster, ownership: ownership)
    }

    /// Stops the embedded server if this process started it (and not one another process
    /// started since).
    public func shutdown(logger: Logger) {
        if let pid = ownership.startedPID { embedded?.stop(logger: logger, startedPID: pid) }
    }

    /// A pooled client for this database (run it with `client.run()`).
    public func makeClient(maximumConnections: Int = 20) -> PostgresClient {
        var configuration = url.clientConfiguration
        configuration.options.maximumConnections = maximumConnections
        configuration.options.connectTimeout = .seconds(5)
        return PostgresClient(configuration: configuration, backgroundLogger: Logger(label: "postgres"))
    }
}

/// Which embedded server this process started, shared by the setup and the keeper.
public final class EmbeddedOwnership: Sendable {
    private let pid = NIOLockedValueBox<Int32?>(nil)

    public init() {}

    public var startedPID: Int32? { pid.withLockedValue { $0 } }

    func started(_ serverPID: Int32) { pid.withLockedValue { $0 = serverPID } }
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
