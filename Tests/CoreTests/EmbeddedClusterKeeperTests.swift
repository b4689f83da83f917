import Core
import Foundation
import Logging
import Testing

@Suite(.serialized) struct EmbeddedClusterKeeperTests {
    let logger = Logger(label: "test.keeper")

    /// `serve` and `worker` on one state folder: the one that started the cluster stops it
    /// when it exits, and the other used to lose its database for good. Its keeper now
    /// starts the cluster again and owns it from then on; the first one's late stop
    /// leaves the new server alone.
    @Test func theOtherProcessStartsTheClusterAgainAndOwnsIt() async throws {
        let state = "/tmp/aptest-keeper-\(UUID().uuidString.prefix(8))"
        try FileManager.default.createDirectory(atPath: state, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: state) }
        let configuration = AppConfiguration(stateDirectory: state)
        let first = try DatabaseSetup.prepare(configuration, logger: logger)
        defer { first.embedded?.kill() }
        let second = try DatabaseSetup.prepare(configuration, logger: logger)
        #expect(first.ownsServer)
        #expect(!second.ownsServer)
        let cluster = try #require(second.embedded)
        let firstPID = try #require(cluster.postmasterPID())

        let keeper = Task {
            try await EmbeddedClusterKeeper(setup: second, interval: .milliseconds(100), logger: logger).run()
        }
        defer { keeper.cancel() }
        first.shutdown(logger: logger)  // the first process exits
        var restarted = false
        for _ in 0..<300 where !restarted {
            try await Task.sleep(for: .milliseconds(100))
            restarted = second.ownsServer && cluster.postmasterIsAlive()
        }
        #expect(restarted)
        #expect(cluster.postmasterPID() != firstPID)
        // The database answers again through the second process's URL.
        let answer = try await second.url.withConnection(logger: logger) { connection in
            try await connection.query("SELECT 1", logger: logger).collect().first?.decode(Int.self)
        }
        #expect(answer == 1)

        // A late stop by the first process leaves the server it did not start running.
        first.shutdown(logger: logger)
        #expect(cluster.postmasterIsAlive())
        keeper.cancel()
        _ = try? await keeper.value
        second.shutdown(logger: logger)
        #expect(!cluster.postmasterIsAlive())
    }
}
