import Core
import Foundation
import Logging
import PostgresNIO
import TestSupport
import Testing

#if canImport(Glibc)
import Glibc
#endif

@Suite struct CLITests {
    let binary = ChildProcess.analyticsproBinary

    func url(_ database: DatabaseURL) -> String {
        guard case .unixSocket(let path) = database.endpoint else { return "" }
        let folder = URL(fileURLWithPath: path).deletingLastPathComponent().path
        return "postgres://\(database.username)@localhost/\(database.database)?host=\(folder)"
    }

    @Test(arguments: [
        (["migrate", "--port", "abc"], [:], "invalid PORT 'abc'"),
        (["migrate"], ["PORT": "99999"], "invalid PORT '99999'"),
        (["serve"], ["LOG_LEVEL": "chatty"], "invalid LOG_LEVEL 'chatty'"),
        (["migrate"], ["DATABASE_URL": "mysql://root@db/x"], "invalid DATABASE_URL"),
        (["org", "create", "Acme", "--tier", "gold", "--database-url", "postgres://u@h/d"], [:], "invalid --tier 'gold'"),
    ] as [([String], [String: String], String)])
    func badConfigurationExitsTwoWithOneLine(arguments: [String], environment: [String: String], message: String) async throws {
        let result = try await ChildProcess.run(binary, arguments, environment: environment)
        #expect(result.status == 2)
        let lines = result.stderr.split(separator: "\n")
        #expect(lines.count == 1, "stderr: \(result.stderr)")
        #expect(result.stderr.contains(message), "stderr: \(result.stderr)")
    }

    @Test func cronNextPrintsFireTimesWithOffsets() async throws {
        let result = try await ChildProcess.run(
            binary, ["cron", "next", "30 2 * * *", "--tz", "America/New_York", "--from", "2026-03-07T12:00:00-05:00", "--count", "2"])
        #expect(result.status == 0)
        #expect(result.stdout == "2026-03-08T03:00:00-04:00\n2026-03-09T02:30:00-04:00\n")
        let bad = try await ChildProcess.run(binary, ["cron", "next", "* * * * MONDAY"])
        #expect(bad.status == 2)
        #expect(bad.stderr.contains("day-of-week field"))
        let badZone = try await ChildProcess.run(binary, ["cron", "next", "* * * * *", "--tz", "Europe/Nowhere"])
        #expect(badZone.status == 2 && badZone.stderr.contains("time zone"))
        let badFrom = try await ChildProcess.run(binary, ["cron", "next", "* * * * *", "--from", "yesterday"])
        #expect(badFrom.status == 2 && badFrom.stderr.contains("--from"))
    }

    @Test func unknownSubcommandOrFlagFails() async throws {
        let subcommand = try await ChildProcess.run(binary, ["frobnicate"])
        #expect(subcommand.status != 0)
        let flag = try await ChildProcess.run(binary, ["migrate", "--no-such-flag"])
        #expect(flag.status != 0)
        #expect(flag.stderr.contains("--no-such-flag"))
    }

    @Test func helpDocumentsTheSettings() async throws {
        let result = try await ChildProcess.run(binary, ["--help"])
        #expect(result.status == 0)
        for setting in AppConfiguration.Setting.allCases {
            #expect(result.stdout.contains(setting.rawValue), "help lacks \(setting.rawValue)")
        }
        let serve = try await ChildProcess.run(binary, ["serve", "--help"])
        #expect(serve.stdout.contains("--port") && serve.stdout.contains("PORT"))
    }

    @Test func orgCreatePrintsIDAndKeyAndStoresOnlyTheHash() async throws {
        let database = try await TestPostgres.shared.makeDatabase()
        let result = try await ChildProcess.run(
            binary, ["org", "create", "Acme", "--tier", "enterprise"], environment: ["DATABASE_URL": url(database)])
        #expect(result.status == 0, "stderr: \(result.stderr)")
        let json = try JSONSerialization.jsonObject(with: Data(result.stdout.utf8)) as? [String: String]
        let orgID = try #require(json?["org_id"].flatMap(UUID.init(uuidString:)))
        let key = try #require(json?["api_key"])
        let logger = Logger(label: "test")
        let row = try await database.withConnection(logger: logger) { connection in
            try await connection.query(
                """
                SELECT o.monthly_event_limit, k.key_hash FROM organizations o JOIN api_keys k ON k.org_id = o.id
                WHERE o.id = \(orgID)
                """, logger: logger
            ).collect().first?.decode((Int64, String).self)
        }
        #expect(row?.0 == 10_000_000)
        #expect(row?.1 == APIKeySecret.hash(key))
    }

    @Test func unreachableDatabaseIsOneLineAndExitOne() async throws {
        let result = try await ChildProcess.run(
            binary, ["migrate"], environment: ["DATABASE_URL": "postgres://nobody@127.0.0.1:1/none"])
        #expect(result.status == 1)
        #expect(result.stderr.split(separator: "\n").count == 1, "stderr: \(result.stderr)")
    }

    /// `run` too: the failed HTTP server cancels the worker and the scheduler, which must
    /// end (they used to retry without pause, logging without end, and never exit).
    @Test(arguments: ["serve", "run"]) func busyPortIsOneLineAndExitOne(command: String) async throws {
        let database = try await TestPostgres.shared.makeDatabase()
        let port = ChildProcess.freePort()
        try await ChildProcess.withListeningSocket(port: port) {
            let child = try ChildProcess(binary, [command, "--port", "\(port)"], environment: ["DATABASE_URL": url(database)])
            let status = await child.wait(timeout: .seconds(30))
            #expect(status == 1)
            #expect(child.stderr.contains("address already in use"), "stderr: \(child.stderr.suffix(2000))")
            let lines = child.stdout.split(separator: "\n").count + child.stderr.split(separator: "\n").count
            #expect(lines < 100, "\(lines) lines of output")
            // Claims and upkeep cut short by the stop are not failures.
            for failure in ["cannot claim jobs", "queue upkeep failed"] {
                #expect(!child.stdout.contains(failure) && !child.stderr.contains(failure), "\(failure)")
            }
        }
    }

    /// A worker process killed with SIGKILL mid-job: its job comes back through the
    /// lease and runs in another worker process.
    @Test func jobsOfAKilledWorkerProcessRunElsewhere() async throws {
        let database = try await TestPostgres.shared.makeDatabase()
        let environment = ["DATABASE_URL": url(database)]
        let logger = Logger(label: "test")
        let id = try await database.withConnection(logger: logger) { connection in
            try await connection.query(
                """
                INSERT INTO jobs (kind, queue, args) VALUES ('diagnostics.sleep', 'default', '{"milliseconds": 60000}')
                RETURNING id
                """, logger: logger
            ).collect().first!.decode(Int64.self)
        }
        func job() async throws -> (String, Int32, String?, String) {
            try await database.withConnection(logger: logger) { connection in
                try await connection.query(
                    "SELECT state, attempt, attempted_by, errors::text FROM jobs WHERE id = \(id)", logger: logger
                ).collect().first!.decode((String, Int32, String?, String).self)
            }
        }
        func waitUntil(_ condition: ((String, Int32, String?, String)) -> Bool) async throws -> (String, Int32, String?, String) {
            var current = try await job()
            for _ in 0..<200 where !condition(current) {
                try await Task.sleep(for: .milliseconds(100))
                current = try await job()
            }
            return current
        }
        let first = try ChildProcess(binary, ["worker", "--queues", "default=1", "--lease", "2"], environment: environment)
        let running = try await waitUntil { $0.0 == "running" }
        #expect(running.0 == "running", "worker stderr: \(first.stderr)")
        first.signal(SIGKILL)
        _ = await first.wait(timeout: .seconds(5))

        let second = try ChildProcess(
            binary, ["worker", "--queues", "default=1", "--lease", "2", "--shutdown-timeout", "0"], environment: environment)
        let rescued = try await waitUntil { $0.0 == "running" && $0.1 == 2 }
        #expect(rescued.0 == "running" && rescued.1 == 2, "worker stderr: \(second.stderr)")
        #expect(rescued.2 != running.2)
        #expect(rescued.3.contains("lease expired"))
        // SIGTERM: the second worker gives the job back and exits 0.
        second.signal(SIGTERM)
        #expect(await second.wait(timeout: .seconds(20)) == 0)
        let released = try await job()
        #expect(released.0 == "available" && released.1 == 1)
    }

    /// `run` with no DATABASE_URL: creates the embedded cluster, becomes ready, and on
    /// SIGTERM/SIGINT exits 0 leaving no server and no lock behind.
    @Test(arguments: [SIGTERM, SIGINT])
    func runStartsEmbeddedClusterAndShutsDownCleanly(signal: Int32) async throws {
        let state = "/tmp/aptest-run-\(UUID().uuidString.prefix(8))"
        defer { try? FileManager.default.removeItem(atPath: state) }
        let port = ChildProcess.freePort()
        let child = try ChildProcess(binary, ["run", "--state-dir", state, "--port", "\(port)"])
        var ready = false
        for _ in 0..<240 where !ready {
            try await Task.sleep(for: .milliseconds(250))
            let probe = try ProcessRunner.run("/usr/bin/curl", ["-s", "-o", "/dev/null", "-w", "%{http_code}", "http://127.0.0.1:\(port)/readyz"])
            ready = probe.output == "200"
        }
        #expect(ready, "stderr: \(child.stderr)")
        let cluster = try EmbeddedPostgres(stateDirectory: state)
        #expect(cluster.isRunning())
        child.signal(signal)
        let status = await child.wait(timeout: .seconds(30))
        #expect(status == 0, "stderr: \(child.stderr)")
        #expect(!cluster.isRunning())
        #expect(!FileManager.default.fileExists(atPath: cluster.dataDirectory + "/postmaster.pid"))
    }

    /// SIGTERM while the process is still starting its embedded cluster (before the
    /// service group runs): it still stops the cluster it started and exits 0. Its
    /// default action used to end the process (exit 143) with PostgreSQL left running.
    @Test func signalWhileStartingStillStopsTheCluster() async throws {
        let state = "/tmp/aptest-early-\(UUID().uuidString.prefix(8))"
        defer { try? FileManager.default.removeItem(atPath: state) }
        let child = try ChildProcess(binary, ["serve", "--state-dir", state, "--port", "\(ChildProcess.freePort())"])
        let cluster = try EmbeddedPostgres(stateDirectory: state)
        let pidFile = cluster.dataDirectory + "/postmaster.pid"
        var starting = false
        for _ in 0..<3000 where !starting {
            try await Task.sleep(for: .milliseconds(10))
            starting = FileManager.default.fileExists(atPath: pidFile)
        }
        #expect(starting, "stderr: \(child.stderr)")
        child.signal(SIGTERM)
        let status = await child.wait(timeout: .seconds(60))
        #expect(status == 0, "stderr: \(child.stderr)")
        #expect(!cluster.isRunning())
        if cluster.isRunning() { cluster.kill() }
    }
}
