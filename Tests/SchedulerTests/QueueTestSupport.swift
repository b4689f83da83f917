import Core
import Foundation
import Logging
import NIOConcurrencyHelpers
import PostgresNIO
@testable import Scheduler
import TestSupport

/// Test jobs record each execution in `executions` (no unique constraint), so a job
/// that ran twice shows up as two rows: ground truth kept apart from the queue's own.
let queueLogger = Logger(label: "test.queue")

func createExecutionsTable(_ client: PostgresClient) async throws {
    try await client.query(
        "CREATE TABLE IF NOT EXISTS executions (n int NOT NULL, job_id int8 NOT NULL, attempt int NOT NULL, at timestamptz DEFAULT clock_timestamp())",
        logger: queueLogger)
}

struct RecordJob: JobDefinition {
    struct Arguments: Codable, Sendable { let n: Int }
    static let kind = "test.record"
    let client: PostgresClient

    func run(_ arguments: Arguments, context: JobContext) async throws -> JobOutcome {
        try await client.query(
            "INSERT INTO executions (n, job_id, attempt) VALUES (\(arguments.n), \(context.id), \(context.attempt))",
            logger: context.logger)
        return .success
    }
}

/// Returns the outcome the test scripted for each attempt, recording every run.
struct ScriptedJob: JobDefinition {
    struct Arguments: Codable, Sendable {
        var n = 0
        var sleepMS = 0
        var ignoreCancellation = false
    }
    static let kind = "test.scripted"
    let client: PostgresClient
    let script: @Sendable (Int) throws -> JobOutcome

    func run(_ arguments: Arguments, context: JobContext) async throws -> JobOutcome {
        try await client.query(
            "INSERT INTO executions (n, job_id, attempt) VALUES (\(arguments.n), \(context.id), \(context.attempt))",
            logger: context.logger)
        if arguments.sleepMS > 0 {
            if arguments.ignoreCancellation {
                let end = ContinuousClock.now + .milliseconds(arguments.sleepMS)
                while ContinuousClock.now < end { try? await Task.sleep(for: .milliseconds(10)) }
            } else {
                try await Task.sleep(for: .milliseconds(arguments.sleepMS))
            }
        }
        return try script(context.attempt)
    }
}

/// Fast timings so tests do not wait on production intervals.
func testWorkerConfiguration(queues: [String: Int] = ["default": 10]) -> WorkerConfiguration {
    var configuration = WorkerConfiguration(queues: queues)
    configuration.pollInterval = .milliseconds(200)
    configuration.rescueInterval = .milliseconds(200)
    configuration.heartbeatInterval = .milliseconds(300)
    configuration.leaseDuration = .seconds(5)
    configuration.shutdownTimeout = .seconds(5)
    return configuration
}

/// How `withWorkers` stops its workers once `body` returns.
enum WorkerStop: CaseIterable, Sendable {
    /// `shutdown()`, as SIGTERM does through the service group.
    case shutdown
    /// Their tasks cancelled, as a service group does when another service fails: they
    /// must drain just the same.
    case cancellation
}

/// Runs `count` workers while `body` runs, then stops them (gracefully by default).
func withWorkers<T: Sendable>(
    _ count: Int = 1, client: PostgresClient, url: DatabaseURL, registry: JobRegistry,
    configuration: WorkerConfiguration = testWorkerConfiguration(), stop: WorkerStop = .shutdown,
    _ body: @Sendable ([Worker]) async throws -> T
) async throws -> T {
    let workers = (0..<count).map { _ -> Worker in
        var configuration = configuration
        configuration.workerID = WorkerConfiguration.makeWorkerID()
        return Worker(
            client: client, listenConfiguration: url.connectionConfiguration, registry: registry,
            configuration: configuration, logger: queueLogger)
    }
    return try await withThrowingTaskGroup(of: T?.self) { group in
        for worker in workers { group.addTask { try await worker.run(); return nil } }
        do {
            let result = try await body(workers)
            switch stop {
            case .shutdown: for worker in workers { worker.shutdown() }
            case .cancellation: group.cancelAll()
            }
            var value: T? = result
            for try await _ in group {}
            value = value ?? nil
            return result
        } catch {
            for worker in workers { worker.shutdown() }
            for try await _ in group {}
            throw error
        }
    }
}

/// Polls `condition` until true or the timeout passes.
func eventually(
    timeout: Duration = .seconds(20), _ condition: @Sendable () async throws -> Bool
) async throws -> Bool {
    let deadline = ContinuousClock.now + timeout
    while ContinuousClock.now < deadline {
        if try await condition() { return true }
        try await Task.sleep(for: .milliseconds(50))
    }
    return try await condition()
}

extension PostgresClient {
    func jobState(_ id: Int64) async throws -> String? {
        try await scalar("SELECT state FROM jobs WHERE id = \(id)", as: String.self)
    }
}
