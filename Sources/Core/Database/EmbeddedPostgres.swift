import Crypto
import Foundation
import Logging

#if canImport(Glibc)
import Glibc
#endif

/// A private PostgreSQL cluster under the state folder: the zero-configuration default.
///
/// It listens on a Unix socket only (no TCP port to collide with), trusts local
/// connections (the socket folder is reachable by its owner alone), and runs as an
/// unprivileged user when the process is root, because initdb refuses root.
public struct EmbeddedPostgres: Sendable {
    public static let superuser = "analyticspro"
    public static let database = "analyticspro"

    /// Folder holding `data/`, the server log and the start lock.
    public let clusterDirectory: String
    /// Folder holding the Unix socket (kept short: socket paths are limited to 107 bytes).
    public let socketDirectory: String
    /// Extra `postgresql.conf` settings (tests turn fsync off).
    public let settings: [String: String]
    /// The user the server runs as; nil means the current user.
    public let runAsUser: String?
    public let binaries: Binaries

    public var dataDirectory: String { clusterDirectory + "/data" }
    public var logFile: String { clusterDirectory + "/postgres.log" }
    public var socketPath: String { socketDirectory + "/.s.PGSQL.5432" }

    /// The cluster under `stateDirectory`.
    ///
    /// When root runs it and the unprivileged user cannot reach the state folder (a
    /// clone under `/root`, say), the cluster lives under `/var/tmp` instead, keyed by
    /// the state folder's path.
    public init(stateDirectory: String, settings: [String: String] = [:]) throws(EmbeddedPostgresError) {
        let absolute = URL(fileURLWithPath: stateDirectory).standardizedFileURL.path
        self.binaries = try Binaries.locate()
        self.settings = settings
        self.runAsUser = try Self.unprivilegedUserIfRoot()
        let key = Self.shortHash(absolute)
        var cluster = absolute + "/postgres"
        do {
            try FileManager.default.createDirectory(atPath: cluster, withIntermediateDirectories: true)
        } catch {
            throw EmbeddedPostgresError("cannot create \(cluster): \(error.localizedDescription)")
        }
        if let user = runAsUser {
            Self.chown(cluster, to: user)
            if !Self.canWrite(cluster, as: user) {
                cluster = "/var/tmp/analyticspro-\(key)/postgres"
                try? FileManager.default.createDirectory(atPath: cluster, withIntermediateDirectories: true)
                Self.chown(cluster, to: user)
                Self.chown(URL(fileURLWithPath: cluster).deletingLastPathComponent().path, to: user)
            }
        }
        self.clusterDirectory = cluster
        let preferredSocket = cluster + "/run"
        self.socketDirectory = preferredSocket.utf8.count <= 90 ? preferredSocket : "/tmp/analyticspro-\(key)"
    }

    /// The URL clients use to reach this cluster.
    public var databaseURL: DatabaseURL {
        DatabaseURL(endpoint: .unixSocket(path: socketPath), username: Self.superuser, password: nil, database: Self.database)
    }

    /// Whether a server is running on this data folder.
    public func isRunning() -> Bool {
        guard FileManager.default.fileExists(atPath: dataDirectory + "/PG_VERSION") else { return false }
        let result = try? ProcessRunner.run(binaries.pgCtl, ["status", "-D", dataDirectory], asUser: runAsUser)
        guard result?.status == 0 else { return false }
        // pg_ctl counts a killed server's unreaped zombie as running.
        let contents = (try? String(contentsOfFile: dataDirectory + "/postmaster.pid", encoding: .utf8)) ?? ""
        let pid = contents.split(separator: "\n").first.flatMap { Int32($0.trimmingCharacters(in: .whitespaces)) }
        return pid.map(Self.isLivePostgres) ?? false
    }

    /// Creates the cluster if needed and starts it unless it already runs.
    /// - Returns: true when this call started the server (the caller then stops it).
    @discardableResult
    public func start(logger: Logger) throws(EmbeddedPostgresError) -> Bool {
        try withStartLock { () throws(EmbeddedPostgresError) -> Bool in
            try initializeIfNeeded(logger: logger)
            if isRunning() {
                try createDatabaseIfNeeded()
                return false
            }
            removeStalePidFile(logger: logger)
            try writeSettings()
            try makeSocketDirectory()
            logger.info("starting embedded PostgreSQL", metadata: ["data": "\(dataDirectory)"])
            let result = try run(binaries.pgCtl, ["start", "-D", dataDirectory, "-l", logFile, "-w", "-t", "60", "-s"])
            guard result.status == 0 else {
                throw EmbeddedPostgresError(
                    "PostgreSQL did not start (pg_ctl exit \(result.status)): \(Self.lastLines(of: logFile) ?? result.output)")
            }
            try createDatabaseIfNeeded()
            return true
        }
    }

    /// The pid in `postmaster.pid`, if the file exists.
    public func postmasterPID() -> Int32? {
        let contents = (try? String(contentsOfFile: dataDirectory + "/postmaster.pid", encoding: .utf8)) ?? ""
        return contents.split(separator: "\n").first.flatMap { Int32($0.trimmingCharacters(in: .whitespaces)) }
    }

    /// Whether a live postgres process holds the pid file: no `pg_ctl`, cheap enough to ask
    /// every few seconds.
    public func postmasterIsAlive() -> Bool {
        postmasterPID().map(Self.isLivePostgres) ?? false
    }

    /// Stops the server (fast shutdown: sessions are disconnected, data is safe).
    ///
    /// Asks `pg_ctl stop` whenever a pid file exists, rather than first asking `isRunning()`
    /// (another `pg_ctl` through `runuser`, then a pid check): twice a `serve` stopped after
    /// minutes of load left its cluster running without logging this stop, and a false
    /// "not running" there is one way that could happen.
    ///
    /// With `startedPID`, only that server: one another process started since (after this
    /// one's server stopped or died) is that process's to stop.
    public func stop(logger: Logger, startedPID: Int32? = nil) {
        guard FileManager.default.fileExists(atPath: dataDirectory + "/postmaster.pid") else {
            logger.info("embedded PostgreSQL is not running: nothing to stop", metadata: ["data": "\(dataDirectory)"])
            return
        }
        if let startedPID, let running = postmasterPID(), running != startedPID {
            logger.info(
                "embedded PostgreSQL was started again by another process: leaving it running",
                metadata: ["pid": "\(running)", "started_pid": "\(startedPID)"])
            return
        }
        logger.info("stopping embedded PostgreSQL")
        do {
            let result = try run(binaries.pgCtl, ["stop", "-D", dataDirectory, "-m", "fast", "-w", "-t", "60", "-s"])
            // Exit 1 with a stale pid file (a killed server): nothing was running.
            if result.status != 0, isRunning() {
                logger.warning(
                    "embedded PostgreSQL did not stop", metadata: ["status": "\(result.status)", "output": "\(result.output)"])
            }
        } catch {
            logger.warning("cannot run pg_ctl stop", metadata: ["error": "\(error)"])
        }
    }

    /// Stops immediately (tests simulating a database that went away).
    public func kill() {
        _ = try? run(binaries.pgCtl, ["stop", "-D", dataDirectory, "-m", "immediate", "-w", "-s"])
    }

    // MARK: - Steps

    func initializeIfNeeded(logger: Logger) throws(EmbeddedPostgresError) {
        if FileManager.default.fileExists(atPath: dataDirectory + "/PG_VERSION") { return }
        // A half-made data folder from an interrupted initdb is useless: start over.
        try? FileManager.default.removeItem(atPath: dataDirectory)
        logger.info("creating embedded PostgreSQL cluster", metadata: ["data": "\(dataDirectory)"])
        let result = try run(binaries.initdb, [
            "-D", dataDirectory, "-U", Self.superuser, "--auth=trust", "--encoding=UTF8", "--locale=C.UTF-8", "-N",
        ])
        guard result.status == 0 else {
            throw EmbeddedPostgresError("initdb failed (exit \(result.status)): \(result.output.suffix(500))")
        }
        // Settings are rewritten on every start into their own file.
        let conf = dataDirectory + "/postgresql.conf"
        do {
            let original = try String(contentsOfFile: conf, encoding: .utf8)
            try (original + "\ninclude_if_exists = 'analyticspro.conf'\n").write(toFile: conf, atomically: false, encoding: .utf8)
        } catch {
            throw EmbeddedPostgresError("cannot write \(conf): \(error.localizedDescription)")
        }
    }

    /// An eighth of the machine's memory, between 128 MB and 1 GB.
    static var sharedBuffersMegabytes: UInt64 {
        min(1024, max(128, ProcessInfo.processInfo.physicalMemory / 8 / 1_048_576))
    }

    func writeSettings() throws(EmbeddedPostgresError) {
        var lines = [
            "listen_addresses = ''",
            "unix_socket_directories = '\(socketDirectory)'",
            "unix_socket_permissions = 0700",
            "max_connections = 200",
            // A larger cache keeps the hot index pages resident and leaves fewer dirty
            // pages for backends to write out themselves.
            "shared_buffers = '\(Self.sharedBuffersMegabytes)MB'",
            // PostgreSQL's default: a checkpoint every ~5 s at full ingest costs few full-page
            // images (events go to new pages). With 8GB, the kernel's page-cache copies in
            // PostgreSQL's writes rose to 18 % of its CPU 40–80 s into full ingest, and the
            // batch p99 over 9 fresh rounds had a median of 87 ms vs 56 (README, Benchmarks).
            "max_wal_size = '1GB'",
            "checkpoint_timeout = '15min'",
            // A checkpoint's final fsyncs stall every commit's WAL flush, and at full ingest
            // they set the batch p99. Spreading its writes over half the interval (not
            // 0.9) starts checkpoints at 690 MB of WAL instead of 540 MB, and its syncs took
            // 0.08–0.09 s instead of 0.10–0.16 s: batches of 100 from 64 connections, p99
            // 39–44 ms against 44–70 ms (2 clusters × 3 rounds each, interleaved).
            "checkpoint_completion_target = 0.5",
            // Pages a backend writes out are handed to the kernel's writeback at once; left
            // to pile up in the page cache, they made the checkpoint's final fsync stall
            // every commit's WAL flush for 200 ms (measured at 200,000 events/s).
            "backend_flush_after = '256kB'",
        ]
        for (key, value) in settings.sorted(by: { $0.key < $1.key }) { lines.append("\(key) = \(value)") }
        let path = dataDirectory + "/analyticspro.conf"
        do {
            try (lines.joined(separator: "\n") + "\n").write(toFile: path, atomically: true, encoding: .utf8)
        } catch {
            throw EmbeddedPostgresError("cannot write \(path): \(error.localizedDescription)")
        }
        if let user = runAsUser { Self.chown(path, to: user) }
    }

    func makeSocketDirectory() throws(EmbeddedPostgresError) {
        do {
            try FileManager.default.createDirectory(
                atPath: socketDirectory, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
        } catch {
            throw EmbeddedPostgresError("cannot create socket folder \(socketDirectory): \(error.localizedDescription)")
        }
        if let user = runAsUser { Self.chown(socketDirectory, to: user) }
    }

    /// A `postmaster.pid` (and the socket's lock file) left by a killed server blocks the
    /// next start when its pid has since been reused or is a zombie nobody has reaped
    /// yet; remove them when no live postgres process owns them.
    func removeStalePidFile(logger: Logger) {
        for lockFile in [dataDirectory + "/postmaster.pid", socketPath + ".lock"] {
            guard let contents = try? String(contentsOfFile: lockFile, encoding: .utf8) else { continue }
            let pid = contents.split(separator: "\n").first.flatMap { Int32($0.trimmingCharacters(in: .whitespaces)) }
            if let pid, Self.isLivePostgres(pid) { continue }
            logger.warning("removing a stale lock file from a server that was killed", metadata: ["file": "\(lockFile)"])
            try? FileManager.default.removeItem(atPath: lockFile)
        }
    }

    /// Alive, not a zombie, and a postgres process.
    static func isLivePostgres(_ pid: Int32) -> Bool {
        guard pid > 0, Glibc.kill(pid, 0) == 0,
            let stat = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8),
            let close = stat.lastIndex(of: ")")
        else { return false }
        let name = stat[stat.index(after: stat.firstIndex(of: "(") ?? stat.startIndex)..<close]
        let state = stat[stat.index(close, offsetBy: 2)...].prefix(1)
        return name.hasPrefix("postgres") && state != "Z" && state != "X"
    }

    func createDatabaseIfNeeded() throws(EmbeddedPostgresError) {
        let exists = try run(binaries.psql, [
            "-h", socketDirectory, "-U", Self.superuser, "-d", "postgres", "-tAc",
            "SELECT 1 FROM pg_database WHERE datname = '\(Self.database)'",
        ])
        guard exists.status == 0 else {
            throw EmbeddedPostgresError("cannot query the embedded cluster: \(exists.output)")
        }
        if exists.output.trimmingCharacters(in: .whitespacesAndNewlines) == "1" { return }
        let created = try run(binaries.psql, [
            "-h", socketDirectory, "-U", Self.superuser, "-d", "postgres", "-c", "CREATE DATABASE \(Self.database)",
        ])
        guard created.status == 0 || created.output.contains("already exists") else {
            throw EmbeddedPostgresError("cannot create database \(Self.database): \(created.output)")
        }
    }

    /// Serialises start-up between processes sharing one state folder.
    func withStartLock<T>(_ body: () throws(EmbeddedPostgresError) -> T) throws(EmbeddedPostgresError) -> T {
        let lockPath = clusterDirectory + "/start.lock"
        let fd = open(lockPath, O_CREAT | O_RDWR, 0o644)
        guard fd >= 0 else { throw EmbeddedPostgresError("cannot open \(lockPath)") }
        defer { close(fd) }
        guard flock(fd, LOCK_EX) == 0 else { throw EmbeddedPostgresError("cannot lock \(lockPath)") }
        defer { flock(fd, LOCK_UN) }
        return try body()
    }

    func run(_ executable: String, _ arguments: [String]) throws(EmbeddedPostgresError) -> ProcessRunner.Result {
        do {
            return try ProcessRunner.run(executable, arguments, asUser: runAsUser, environment: ["LC_ALL": "C.UTF-8", "PATH": "/usr/bin:/bin"])
        } catch {
            throw EmbeddedPostgresError("cannot run \(executable): \(error.localizedDescription)")
        }
    }

    // MARK: - Host facts

    static func unprivilegedUserIfRoot() throws(EmbeddedPostgresError) -> String? {
        guard geteuid() == 0 else { return nil }
        for candidate in ["postgres", "nobody"] where getpwnam(candidate) != nil {
            return candidate
        }
        throw EmbeddedPostgresError("running as root and no unprivileged user (postgres or nobody) exists to run PostgreSQL")
    }

    static func chown(_ path: String, to user: String) {
        guard let entry = getpwnam(user) else { return }
        _ = Glibc.chown(path, entry.pointee.pw_uid, entry.pointee.pw_gid)
    }

    static func canWrite(_ path: String, as user: String) -> Bool {
        (try? ProcessRunner.run("/usr/bin/test", ["-w", path, "-a", "-x", path], asUser: user))?.status == 0
    }

    static func shortHash(_ text: String) -> String {
        Hex.encode(SHA256.hash(data: Data(text.utf8)).prefix(6))
    }

    static func lastLines(of path: String, count: Int = 5) -> String? {
        guard let text = try? String(contentsOfFile: path, encoding: .utf8) else { return nil }
        return text.split(separator: "\n").suffix(count).joined(separator: " | ")
    }

    /// The PostgreSQL server programs this machine has.
    public struct Binaries: Sendable {
        public let initdb: String
        public let pgCtl: String
        public let psql: String

        static func locate() throws(EmbeddedPostgresError) -> Binaries {
            var folders: [String] = []
            let versions = (try? FileManager.default.contentsOfDirectory(atPath: "/usr/lib/postgresql")) ?? []
            for version in versions.sorted(by: { (Int($0) ?? 0) > (Int($1) ?? 0) }) {
                folders.append("/usr/lib/postgresql/\(version)/bin")
            }
            folders += (ProcessInfo.processInfo.environment["PATH"] ?? "/usr/local/bin:/usr/bin").split(separator: ":").map(String.init)
            for folder in folders {
                let initdb = folder + "/initdb", pgCtl = folder + "/pg_ctl"
                if FileManager.default.isExecutableFile(atPath: initdb), FileManager.default.isExecutableFile(atPath: pgCtl) {
                    let psqlCandidates = [folder + "/psql", "/usr/bin/psql"]
                    let psql = psqlCandidates.first { FileManager.default.isExecutableFile(atPath: $0) } ?? "/usr/bin/psql"
                    return Binaries(initdb: initdb, pgCtl: pgCtl, psql: psql)
                }
            }
            throw EmbeddedPostgresError(
                "PostgreSQL server programs (initdb, pg_ctl) not found: install the Debian package 'postgresql', or set DATABASE_URL")
        }
    }
}

/// The embedded cluster could not be prepared or started; the message says why.
public struct EmbeddedPostgresError: Error, CustomStringConvertible {
    public let description: String
    public init(_ description: String) { self.description = description }
}

import NIOPosix

extension EmbeddedPostgres {
    /// `start` on a thread-pool thread: initdb and `pg_ctl -w` block for seconds, which
    /// must not stall Swift concurrency's few cooperative threads.
    @discardableResult
    public func startAsync(logger: Logger) async throws -> Bool {
        try await NIOThreadPool.singleton.runIfActive { try self.start(logger: logger) }
    }

    /// `stop` off the cooperative threads.
    public func stopAsync(logger: Logger) async {
        _ = try? await NIOThreadPool.singleton.runIfActive { self.stop(logger: logger) }
    }

    /// `kill` off the cooperative threads.
    public func killAsync() async {
        _ = try? await NIOThreadPool.singleton.runIfActive { self.kill() }
    }
}
