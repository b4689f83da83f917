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
    public var ownsServer: Bool { ownership.owns }

    public static func prepare(_ configuration: AppConfiguration, logger: Logger) throws -> DatabaseSetup {
        if let url = configuration.databaseURL {
            return DatabaseSetup(url: url, embedded: nil, ownership: EmbeddedOwnership())
        }
        let cluster = try EmbeddedPostgres(stateDirectory: configuration.stateDirectory)
        let ownership = EmbeddedOwnership()
        if try cluster.start(logger: logger) { ownership.started(pid: cluster.postmasterPID()) }
        return DatabaseSetup(url: cluster.databaseURL, embedded: cluster, ownership: ownership)
    }

    /// Stops the embedded server if this process started it (and not one another process
    /// started since).
    public func shutdown(logger: Logger) {
        if ownership.owns { embedded?.stop(logger: logger, startedPID: ownership.startedPID) }
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
    private let state = NIOLockedValueBox<(owns: Bool, pid: Int32?)>((false, nil))

    public init() {}

    /// This process started the server and stops it on exit.
    public var owns: Bool { state.withLockedValue { $0.owns } }
    /// The started server's pid (nil if its pid file could not be read: then any server).
    public var startedPID: Int32? { state.withLockedValue { $0.pid } }

    func started(pid: Int32?) { state.withLockedValue { $0 = (true, pid) } }
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
