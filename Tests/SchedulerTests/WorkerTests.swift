import Core
import Foundation
import Logging
import NIOConcurrencyHelpers
import PostgresNIO
@testable import Scheduler
import TestSupport
import Testing

@Suite struct WorkerTests {
    func registry(_ client: PostgresClient, script: @escaping @Sendable (Int) throws -> JobOutcome) -> JobRegistry {
        var registry = JobRegistry()
        registry.register(ScriptedJob(client: client, script: script))
        registry.register(RecordJob(client: client))
        return registry
    }

    @Test func pastMaxAttemptsTheJobIsDiscardedWithItsHistory() async throws {
        try await withTestDatabase { client, url in
            try await createExecutionsTable(client)
            let registry = registry(client) { attempt in .retry(after: .milliseconds(10), reason: "boom \(attempt)") }
            let id = try #require(try await JobQueue(client: client).enqueue(
                ScriptedJob.self, .init(), options: .init(maxAttempts: 3), logger: queueLogger))
            try await withWorkers(client: client, url: url, registry: registry) { _ in
                let reached = try await eventually { try await client.jobState(id) == "discarded" }
                #expect(reached)
            }
            let job = try #require(try await JobQueue(client: client).find(id: id, logger: queueLogger))
            #expect(job.attempt == 3)
            let errors = try JSONSerialization.jsonObject(with: Data(job.errors.utf8)) as? [[String: Any]]
            #expect(errors?.compactMap { $0["error"] as? String } == ["boom 1", "boom 2", "boom 3"])
            #expect(errors?.compactMap { $0["attempt"] as? Int } == [1, 2, 3])
            #expect(job.finishedAt != nil)
        }
    }

    @Test func aThrowingHandlerIsAFailedAttemptRetriedWithBackoff() async throws {
        try await withTestDatabase { client, url in
            try await createExecutionsTable(client)
            struct Failure: Error, CustomStringConvertible { var description: String { "upstream said no" } }
            let registry = registry(client) { _ in throw Failure() }
            let id = try #require(try await JobQueue(client: client).enqueue(ScriptedJob.self, .init(), logger: queueLogger))
            try await withWorkers(client: client, url: url, registry: registry) { _ in
                let reached = try await eventually { try await client.jobState(id) == "retryable" }
                #expect(reached)
            }
            let delay = try await client.scalar(
                "SELECT extract(epoch FROM run_at - attempted_at)::float8 FROM jobs WHERE id = \(id)", as: Double.self)
            #expect((delay ?? 0) > 13 && (delay ?? 0) < 19)
            let job = try #require(try await JobQueue(client: client).find(id: id, logger: queueLogger))
            #expect(job.errors.contains("upstream said no"))
        }
    }

    @Test func snoozeRunsAgainLaterWithoutSpendingAnAttempt() async throws {
        try await withTestDatabase { client, url in
            try await createExecutionsTable(client)
            let runs = Counter()
            let registry = registry(client) { _ in runs.increment() == 1 ? .snooze(.milliseconds(300)) : .success }
            let id = try #require(try await JobQueue(client: client).enqueue(ScriptedJob.self, .init(), logger: queueLogger))
            try await withWorkers(client: client, url: url, registry: registry) { _ in
                let reached = try await eventually { try await client.jobState(id) == "completed" }
                #expect(reached)
            }
            #expect(try await client.scalar("SELECT count(*)::int FROM executions", as: Int.self) == 2)
            #expect(try await client.scalar("SELECT attempt FROM jobs WHERE id = \(id)", as: Int32.self) == 1)
            let gap = try await client.scalar(
                "SELECT extract(epoch FROM max(at) - min(at))::float8 FROM executions", as: Double.self)
            #expect((gap ?? 0) >= 0.29)
        }
    }

    /// A job snoozed without delay runs again at once: its result's write wakes the
    /// workers of its queue, as an enqueue does, rather than leaving it to their next poll.
    @Test func aJobDueAgainAtOnceWakesTheWorkers() async throws {
        try await withTestDatabase { client, url in
            try await createExecutionsTable(client)
            let runs = Counter()
            let registry = registry(client) { _ in runs.increment() == 1 ? .snooze(.zero) : .success }
            var configuration = testWorkerConfiguration()
            configuration.pollInterval = .seconds(60)
            let id = try #require(try await JobQueue(client: client).enqueue(ScriptedJob.self, .init(), logger: queueLogger))
            try await withWorkers(client: client, url: url, registry: registry, configuration: configuration) { _ in
                // Well under the poll interval: only the notification can have woken the worker.
                let reached = try await eventually(timeout: .seconds(20)) { try await client.jobState(id) == "completed" }
                #expect(reached)
            }
            #expect(try await client.scalar("SELECT count(*)::int FROM executions", as: Int.self) == 2)
        }
    }

    @Test func cancelStopsPendingJobsAndHandlersCanCancel() async throws {
        try await withTestDatabase { client, url in
            try await createExecutionsTable(client)
            let queue = JobQueue(client: client)
            let later = try #require(try await queue.enqueue(
                ScriptedJob.self, .init(), options: .init(delay: .seconds(3600)), logger: queueLogger))
            #expect(try await client.jobState(later) == "scheduled")
            try await queue.cancel(id: later, logger: queueLogger)
            #expect(try await client.jobState(later) == "cancelled")
            await #expect(throws: JobQueueError.self) { try await queue.cancel(id: later, logger: queueLogger) }
            await #expect(throws: JobQueueError.self) { try await queue.cancel(id: 999_999, logger: queueLogger) }

            let registry = registry(client) { _ in .cancel(reason: "customer deleted") }
            let id = try #require(try await queue.enqueue(ScriptedJob.self, .init(), logger: queueLogger))
            try await withWorkers(client: client, url: url, registry: registry) { _ in
                let reached = try await eventually { try await client.jobState(id) == "cancelled" }
                #expect(reached)
            }
            #expect(try await client.scalar("SELECT count(*)::int FROM executions", as: Int.self) == 1)
            // An operator can retry it.
            try await queue.retry(id: id, logger: queueLogger)
            #expect(try await client.jobState(id) == "available")
        }
    }

    @Test func aJobPastItsTimeoutIsCancelledAndFails() async throws {
        try await withTestDatabase { client, url in
            try await createExecutionsTable(client)
            let registry = registry(client) { _ in .success }
            let id = try #require(try await JobQueue(client: client).enqueue(
                ScriptedJob.self, .init(sleepMS: 10_000, ignoreCancellation: true),
                options: .init(maxAttempts: 1, timeout: .milliseconds(300)), logger: queueLogger))
            let started = ContinuousClock.now
            try await withWorkers(client: client, url: url, registry: registry) { _ in
                let reached = try await eventually { try await client.jobState(id) == "discarded" }
                #expect(reached)
            }
            #expect(ContinuousClock.now - started < .seconds(9))
            let job = try #require(try await JobQueue(client: client).find(id: id, logger: queueLogger))
            #expect(job.errors.contains("timed out"))
        }
    }

    @Test func unknownKindsAndUndecodableArgumentsAreDiscarded() async throws {
        try await withTestDatabase { client, url in
            try await createExecutionsTable(client)
            let queue = JobQueue(client: client)
            try await queue.enqueueMany(
                [
                    .init(kind: "no.such.kind", arguments: "{}"),
                    .init(kind: RecordJob.kind, arguments: #"{"n": "not a number"}"#),
                ], logger: queueLogger)
            let registry = registry(client) { _ in .success }
            try await withWorkers(client: client, url: url, registry: registry) { _ in
                let reached = try await eventually {
                    try await client.scalar("SELECT count(*)::int FROM jobs WHERE state = 'discarded'", as: Int.self) == 2
                }
                #expect(reached)
            }
            let errors = try await client.scalar("SELECT string_agg(errors::text, ' ' ORDER BY id) FROM jobs", as: String.self) ?? ""
            #expect(errors.contains("unknown job kind 'no.such.kind'"))
            #expect(errors.contains("arguments do not decode"))
            #expect(try await client.scalar("SELECT count(*)::int FROM executions", as: Int.self) == 0)
        }
    }

    /// A worker that stopped renewing its lease (simulated: a running row with an expired
    /// lease and a worker id nobody has) loses the job to a live worker.
    @Test func jobsOfALostWorkerAreRescuedAndRunElsewhere() async throws {
        try await withTestDatabase { client, url in
            try await createExecutionsTable(client)
            let id = try #require(try await JobQueue(client: client).enqueue(RecordJob.self, .init(n: 7), logger: queueLogger))
            try await client.query(
                """
                UPDATE jobs SET state = 'running', attempt = 1, attempted_by = 'dead-host:1:x',
                    attempted_at = now() - interval '2 minutes', lease_expires_at = now() - interval '1 second'
                WHERE id = \(id)
                """, logger: queueLogger)
            let registry = registry(client) { _ in .success }
            try await withWorkers(client: client, url: url, registry: registry) { _ in
                let reached = try await eventually { try await client.jobState(id) == "completed" }
                #expect(reached)
            }
            let job = try #require(try await JobQueue(client: client).find(id: id, logger: queueLogger))
            #expect(job.attempt == 2)
            #expect(job.errors.contains("lease expired: worker dead-host:1:x"))
            #expect(try await client.scalar("SELECT count(*)::int FROM executions", as: Int.self) == 1)
        }
    }

    @Test func heartbeatKeepsLongJobsLeased() async throws {
        try await withTestDatabase { client, url in
            try await createExecutionsTable(client)
            var configuration = testWorkerConfiguration()
            configuration.leaseDuration = .milliseconds(800)
            configuration.heartbeatInterval = .milliseconds(200)
            let registry = registry(client) { _ in .success }
            let id = try #require(try await JobQueue(client: client).enqueue(
                ScriptedJob.self, .init(sleepMS: 2500), logger: queueLogger))
            try await withWorkers(2, client: client, url: url, registry: registry, configuration: configuration) { _ in
                let reached = try await eventually { try await client.jobState(id) == "completed" }
                #expect(reached)
            }
            // Longer than three leases, yet never rescued: ran once.
            #expect(try await client.scalar("SELECT count(*)::int FROM executions", as: Int.self) == 1)
        }
    }

    /// Cancelled (a service group cancels every service when one fails; a command ends its
    /// task group), a worker stops as on SIGTERM. Before, its result write and release ran
    /// in the cancelled task and failed at once: the job stayed `running` until its lease
    /// ran out — for the rollup job (one per cluster, by unique key) every rollup and live
    /// dashboard stood still for a lease.
    @Test(arguments: WorkerStop.allCases)
    func gracefulShutdownLetsRunningJobsFinish(stop: WorkerStop) async throws {
        try await withTestDatabase { client, url in
            try await createExecutionsTable(client)
            let registry = registry(client) { _ in .success }
            let id = try #require(try await JobQueue(client: client).enqueue(
                ScriptedJob.self, .init(sleepMS: 700), logger: queueLogger))
            try await withWorkers(client: client, url: url, registry: registry, stop: stop) { _ in
                let reached = try await eventually { try await client.jobState(id) == "running" }
                #expect(reached)
            }
            // withWorkers returned only after the shutdown: the job finished and was recorded.
            #expect(try await client.jobState(id) == "completed")
        }
    }

    @Test(arguments: WorkerStop.allCases)
    func shutdownTimeoutReleasesUnfinishedJobs(stop: WorkerStop) async throws {
        try await withTestDatabase { client, url in
            try await createExecutionsTable(client)
            var configuration = testWorkerConfiguration()
            configuration.shutdownTimeout = .milliseconds(300)
            let registry = registry(client) { _ in .success }
            let id = try #require(try await JobQueue(client: client).enqueue(
                ScriptedJob.self, .init(sleepMS: 30_000), logger: queueLogger))
            let started = ContinuousClock.now
            try await withWorkers(client: client, url: url, registry: registry, configuration: configuration, stop: stop) { _ in
                let reached = try await eventually { try await client.jobState(id) == "running" }
                #expect(reached)
            }
            #expect(ContinuousClock.now - started < .seconds(10))
            #expect(try await client.jobState(id) == "available")
            #expect(try await client.scalar("SELECT attempt FROM jobs WHERE id = \(id)", as: Int32.self) == 0)
        }
    }

    @Test func pruningDeletesOnlyOldFinishedJobs() async throws {
        try await withTestDatabase { client, _ in
            let queue = JobQueue(client: client)
            try await queue.enqueueMany(try (0..<30).map { try .init(RecordJob.self, .init(n: $0)) }, logger: queueLogger)
            try await client.query(
                """
                UPDATE jobs SET state = (ARRAY['completed', 'discarded', 'cancelled'])[1 + id % 3],
                    finished_at = now() - interval '2 days' WHERE id % 2 = 0
                """, logger: queueLogger)
            try await client.query(
                "UPDATE jobs SET state = 'completed', finished_at = now() WHERE id % 2 = 1 AND id % 5 = 0", logger: queueLogger)
            let deleted = try await QueueMaintenance(client: client, logger: queueLogger).prune(olderThan: .seconds(86_400))
            #expect(deleted == 15)
            #expect(try await client.scalar("SELECT count(*)::int FROM jobs", as: Int.self) == 15)
        }
    }

    @Test func statsCountByQueueAndState() async throws {
        try await withTestDatabase { client, _ in
            let queue = JobQueue(client: client)
            try await queue.enqueueMany(try (0..<5).map { try .init(RecordJob.self, .init(n: $0), options: .init(queue: "reports")) }, logger: queueLogger)
            try await queue.enqueue(RecordJob.self, .init(n: 9), options: .init(delay: .seconds(600)), logger: queueLogger)
            try await client.query(
                """
                UPDATE jobs SET run_at = now() - interval '30 seconds', state = 'retryable',
                    attempted_at = now(), errors = jsonb_build_array(jsonb_build_object('attempt', 1, 'at', now(), 'error', 'x'))
                WHERE id = (SELECT min(id) FROM jobs)
                """, logger: queueLogger)
            let stats = try await JobStats.fetch(client: client, logger: queueLogger)
            #expect(stats.counts["reports"] == ["available": 4, "retryable": 1])
            #expect(stats.counts["default"] == ["scheduled": 1])
            #expect((stats.oldestAvailableAgeSeconds["reports"] ?? 0) >= 29)
            #expect(stats.failuresLastHour == 1)
        }
    }
}

/// A thread-safe counter for scripted handlers.
final class Counter: Sendable {
    private let value = NIOLockedValueBox(0)
    func increment() -> Int { value.withLockedValue { $0 += 1; return $0 } }
}
