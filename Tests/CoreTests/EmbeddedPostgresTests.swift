import Core
import Foundation
import Logging
import Testing

#if canImport(Glibc)
import Glibc
#endif

@Suite(.serialized) struct EmbeddedPostgresTests {
    let logger = Logger(label: "test.embedded")

    func makeStateDirectory() -> String {
        let path = "/tmp/aptest-embedded-\(UUID().uuidString.prefix(8))"
        try? FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
        return path
    }

    @Test func createsStartsReusesAndStops() async throws {
        let state = makeStateDirectory()
        defer { try? FileManager.default.removeItem(atPath: state) }
        let cluster = try EmbeddedPostgres(stateDirectory: state)
        defer { cluster.kill() }
        #expect(try await cluster.startAsync(logger: logger) == true)
        #expect(cluster.isRunning())
        // A second user of the same state folder connects instead of starting another.
        let again = try EmbeddedPostgres(stateDirectory: state)
        #expect(try await again.startAsync(logger: logger) == false)
        if geteuid() == 0 {
            // initdb refuses root: the data folder belongs to the unprivileged user.
            let owner = try FileManager.default.attributesOfItem(atPath: cluster.dataDirectory)[.ownerAccountName] as? String
            #expect(owner == cluster.runAsUser)
        }
        // No TCP listener: only the socket.
        let conf = try String(contentsOfFile: cluster.dataDirectory + "/analyticspro.conf", encoding: .utf8)
        #expect(conf.contains("listen_addresses = ''"))
        cluster.stop(logger: logger)
        #expect(!cluster.isRunning())
    }

    @Test func recoversFromAKilledServer() async throws {
        let state = makeStateDirectory()
        defer { try? FileManager.default.removeItem(atPath: state) }
        let cluster = try EmbeddedPostgres(stateDirectory: state)
        defer { cluster.kill() }
        try await cluster.startAsync(logger: logger)
        let pidFile = cluster.dataDirectory + "/postmaster.pid"
        let pid = Int32(try String(contentsOfFile: pidFile, encoding: .utf8).split(separator: "\n")[0])!
        kill(pid, SIGKILL)
        // Gone, or a zombie nobody has reaped yet (it no longer holds anything).
        for _ in 0..<100 where kill(pid, 0) == 0 {
            let stat = (try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8)) ?? ""
            if stat.contains(") Z ") { break }
            try await Task.sleep(for: .milliseconds(50))
        }
        try await Task.sleep(for: .milliseconds(300))  // backends notice the postmaster is gone
        // Point the stale pid file at a live process that is not PostgreSQL (pid 1).
        var lines = try String(contentsOfFile: pidFile, encoding: .utf8).split(separator: "\n", omittingEmptySubsequences: false)
        lines[0] = "1"
        try lines.joined(separator: "\n").write(toFile: pidFile, atomically: false, encoding: .utf8)
        #expect(try await cluster.startAsync(logger: logger) == true)
        #expect(cluster.isRunning())
    }
}
