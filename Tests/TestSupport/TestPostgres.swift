import Core
import Foundation
import Logging
import NIOPosix
import PostgresNIO

#if canImport(Glibc)
import Glibc
#endif

/// The PostgreSQL server of this test process: `TEST_DATABASE_URL` when set, else a
/// throwaway cluster in a temporary folder, run as an unprivileged user and removed
/// by a watchdog once this process exits, however it exits.
///
/// Every test gets its own database, copied from a migrated template, so tests run in
/// parallel without seeing each other's rows.
public actor TestPostgres {
    public static let shared = TestPostgres()

    private var base: DatabaseURL?
    /// Created once, by the first caller; later callers await the same task (the actor
    /// is reentrant across awaits, so a flag alone would let two callers build it).
    private var templateTask: Task<Void, any Error>?
    public let logger = Logger(label: "test.postgres")

    private var baseTask: Task<DatabaseURL, any Error>?

    /// The server's administrative database (started once, off the cooperative threads).
    public func serverURL() async throws -> DatabaseURL {
        if let base { return base }
        if baseTask == nil {
            let logger = self.logger
            baseTask = Task {
                if let raw = ProcessInfo.processInfo.environment["TEST_DATABASE_URL"], !raw.isEmpty {
                    return try DatabaseURL(parsing: raw)
                }
                let cluster = try await NIOThreadPool.singleton.runIfActive { try Self.startThrowawayCluster(logger: logger) }
                return cluster.databaseURL.with(database: "postgres")
            }
        }
        let url = try await baseTask!.value
        base = url
        return url
    }

    /// A new, empty database; migrated to the latest schema unless `migrated` is false.
    public func makeDatabase(migrated: Bool = true) async throws -> DatabaseURL {
        let server = try await serverURL()
        let name = "t_" + UUID().uuidString.lowercased().replacingOccurrences(of: "-", with: "")
        if migrated { try await ensureTemplate(server: server) }
        let template = migrated ? "analyticspro_template" : "template0"
        let logger = self.logger
        try await server.withConnection(logger: logger) { connection in
            _ = try await connection.query(
                "CREATE DATABASE \(unescaped: name) TEMPLATE \(unescaped: template)", logger: logger)
        }
        return server.with(database: name)
    }

    private func ensureTemplate(server: DatabaseURL) async throws {
        if templateTask == nil {
            let logger = self.logger
            templateTask = Task { try await Self.buildTemplate(server: server, logger: logger) }
        }
        try await templateTask!.value
    }

    private static func buildTemplate(server: DatabaseURL, logger: Logger) async throws {
        let template = server.with(database: "analyticspro_template")
        try await server.withConnection(logger: logger) { connection in
            try await connection.query("DROP DATABASE IF EXISTS analyticspro_template", logger: logger)
            try await connection.query("CREATE DATABASE analyticspro_template TEMPLATE template0", logger: logger)
        }
        try await template.withConnection(logger: logger) { connection in
            try await Migrator().migrate(on: connection, logger: logger)
        }
    }

    static func startThrowawayCluster(logger: Logger) throws -> EmbeddedPostgres {
        var template = Array("/tmp/aptest-XXXXXX".utf8CString)
        guard let folder = template.withUnsafeMutableBufferPointer({ mkdtemp($0.baseAddress!) }) else {
            throw EmbeddedPostgresError("cannot create a temporary folder")
        }
        let root = String(cString: folder)
        chmod(root, 0o755)
        let cluster = try EmbeddedPostgres(
            stateDirectory: root,
            settings: [
                // Durability is not what these tests measure; speed is welcome.
                "fsync": "off", "synchronous_commit": "off", "full_page_writes": "off",
                "max_connections": "400", "shared_buffers": "'128MB'",
            ])
        try cluster.start(logger: logger)
        try spawnWatchdog(cluster: cluster, root: root)
        return cluster
    }

    /// A detached shell that waits for this process to end, then stops the cluster and
    /// deletes its folder: cleanup happens even when a test crashes the process.
    static func spawnWatchdog(cluster: EmbeddedPostgres, root: String) throws {
        let pgCtl = cluster.binaries.pgCtl
        let stop = cluster.runAsUser.map { "runuser -u \($0) -- \(pgCtl)" } ?? pgCtl
        let script = """
            while kill -0 \(getpid()) 2>/dev/null; do sleep 0.5; done
            \(stop) stop -D '\(cluster.dataDirectory)' -m immediate >/dev/null 2>&1
            rm -rf '\(root)' '\(cluster.socketDirectory)'
            """
        var attributes = posix_spawnattr_t()
        posix_spawnattr_init(&attributes)
        defer { posix_spawnattr_destroy(&attributes) }
        posix_spawnattr_setflags(&attributes, 0x80 /* POSIX_SPAWN_SETSID */)
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        for fd: Int32 in 0...2 {
            posix_spawn_file_actions_addopen(&actions, fd, "/dev/null", O_RDWR, 0)
        }
        _ = spawnActionsCloseFrom(&actions, 3)
        let parts: [String] = ["/bin/sh", "-c", script]
        let argv = parts.map { strdup($0) } + [nil]
        defer { argv.forEach { free($0) } }
        var pid: pid_t = 0
        let result = posix_spawn(&pid, "/bin/sh", &actions, &attributes, argv, environ)
        guard result == 0 else { throw EmbeddedPostgresError("cannot start the cleanup watchdog") }
    }
}

/// Runs `body` with a pooled client on a fresh database of the test server.
public func withTestDatabase<T: Sendable>(
    migrated: Bool = true,
    _ body: @Sendable (PostgresClient, DatabaseURL) async throws -> T
) async throws -> T {
    let url = try await TestPostgres.shared.makeDatabase(migrated: migrated)
    var configuration = url.clientConfiguration
    configuration.options.maximumConnections = 8
    let client = PostgresClient(configuration: configuration, backgroundLogger: Logger(label: "test.client"))
    return try await withThrowingTaskGroup(of: T?.self) { group in
        group.addTask {
            await client.run()
            return nil
        }
        defer { group.cancelAll() }
        return try await body(client, url)
    }
}

extension PostgresClient {
    /// The first column of the first row, for terse assertions.
    public func scalar<T: PostgresDecodable & Sendable>(
        _ query: PostgresQuery, as type: T.Type = T.self
    ) async throws -> T? {
        try await self.query(query, logger: Logger(label: "test")).collect().first?.decode(T.self)
    }
}
