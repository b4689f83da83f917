import Core
import Foundation
import Logging
import PostgresNIO
@testable import Scheduler
import TestSupport
import Testing

/// The database restarts while workers run: they reconnect and continue; no job is
/// lost and none runs twice.
@Suite struct DatabaseRestartTests {
    @Test func workersSurviveADatabaseRestart() async throws {
        let state = "/tmp/aptest-restart-\(UUID().uuidString.prefix(8))"
        defer { try? FileManager.default.removeItem(atPath: state) }
        let cluster = try EmbeddedPostgres(stateDirectory: state, settings: ["fsync": "off"])
        defer { cluster.kill() }
        try await cluster.startAsync(logger: queueLogger)
        let url = cluster.databaseURL
        try await url.withConnection(logger: queueLogger) { connection in
            try await Migrator().migrate(on: connection, logger: queueLogger)
        }
        var clientConfiguration = url.clientConfiguration
        clientConfiguration.options.connectTimeout = .seconds(1)
        let client = PostgresClient(configuration: clientConfiguration, backgroundLogger: queueLogger)
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { await client.run() }
            defer { group.cancelAll() }
            try await createExecutionsTable(client)
            var registry = JobRegistry()
            registry.register(ScriptedJob(client: client) { _ in .success })
            var configuration = testWorkerConfiguration(queues: ["default": 4])
            configuration.leaseDuration = .seconds(2)
            // With a timeout, as a job should have: a handler whose own query postgres-nio
            // lost when the connection closed under it (see withDeadline) would otherwise
            // hold its worker slot for good.
            let jobs = try (0..<300).map {
                try JobQueue.NewJob(ScriptedJob.self, .init(n: $0, sleepMS: 20), options: .init(timeout: .seconds(3)))
            }
            try await JobQueue(client: client).enqueueMany(jobs, logger: queueLogger)
            try await withWorkers(2, client: client, url: url, registry: registry, configuration: configuration) { _ in
                // Let some jobs run, then pull the database away mid-stream and bring it back.
                let started = try await eventually {
                    (try await client.scalar("SELECT count(*)::int FROM executions", as: Int.self) ?? 0) > 30
                }
                #expect(started)
                await cluster.killAsync()
                try await Task.sleep(for: .seconds(1))
                try await cluster.startAsync(logger: queueLogger)
                let finished = try await eventually(timeout: .seconds(60)) {
                    (try? await client.scalar(
                        "SELECT count(*)::int FROM jobs WHERE state = 'completed'", as: Int.self)) == 300
                }
                #expect(finished)
            }
            let (runs, distinct) = try await client.query(
                "SELECT count(*)::int, count(DISTINCT n)::int FROM executions", logger: queueLogger
            ).collect().first!.decode((Int, Int).self)
            #expect(distinct == 300)
            // A handler's own write can land while the database dies before the job's
            // completion does; then, and only then, the job runs again. Each such
            // re-run is visible as a second attempt.
            let rerun = try await client.scalar("SELECT count(*)::int FROM jobs WHERE attempt > 1", as: Int.self) ?? 0
            #expect(runs - distinct <= rerun)
        }
    }
}
