import Core
import Foundation
import Logging
import PostgresNIO
@testable import Scheduler
import TestSupport
import Testing

@Suite struct JobQueueTests {
    /// Exactly once: 4 workers drain 10,000 jobs; each job's execution is recorded in a
    /// table the queue does not touch. None missing, none twice.
    @Test func fourWorkersRunTenThousandJobsExactlyOnce() async throws {
        try await withTestDatabase { client, url in
            try await createExecutionsTable(client)
            var registry = JobRegistry()
            registry.register(RecordJob(client: client))
            let jobs = try (0..<10_000).map { try JobQueue.NewJob(RecordJob.self, .init(n: $0)) }
            #expect(try await JobQueue(client: client).enqueueMany(jobs, logger: queueLogger) == 10_000)
            try await withWorkers(4, client: client, url: url, registry: registry) { _ in
                let done = try await eventually(timeout: .seconds(90)) {
                    try await client.scalar("SELECT count(*)::int FROM jobs WHERE state = 'completed'", as: Int.self) == 10_000
                }
                #expect(done)
            }
            let (runs, distinct, minN, maxN) = try await client.query(
                "SELECT count(*)::int, count(DISTINCT n)::int, min(n), max(n) FROM executions", logger: queueLogger
            ).collect().first!.decode((Int, Int, Int32, Int32).self)
            #expect(runs == 10_000)
            #expect(distinct == 10_000)
            #expect(minN == 0 && maxN == 9_999)
            // Work was spread over several workers.
            let workers = try await client.scalar("SELECT count(DISTINCT attempted_by)::int FROM jobs", as: Int.self)
            #expect((workers ?? 0) >= 2)
        }
    }

    @Test func transactionalEnqueueExistsOnlyIfTheTransactionCommits() async throws {
        try await withTestDatabase { client, _ in
            struct Boom: Error {}
            await #expect(throws: (any Error).self) {
                try await client.withTransaction(logger: queueLogger) { connection in
                    try await JobQueue.enqueue(RecordJob.self, .init(n: 1), on: connection, logger: queueLogger)
                    throw Boom()
                }
            }
            #expect(try await client.scalar("SELECT count(*)::int FROM jobs", as: Int.self) == 0)
            _ = try await client.withTransaction(logger: queueLogger) { connection in
                try await JobQueue.enqueue(RecordJob.self, .init(n: 2), on: connection, logger: queueLogger)
            }
            #expect(try await client.scalar("SELECT count(*)::int FROM jobs", as: Int.self) == 1)
        }
    }

    @Test func uniqueKeyHoldsUnderConcurrentEnqueue() async throws {
        try await withTestDatabase { client, _ in
            let queue = JobQueue(client: client)
            let ids = try await withThrowingTaskGroup(of: Int64?.self) { group in
                for n in 0..<20 {
                    group.addTask {
                        try await queue.enqueue(RecordJob.self, .init(n: n), options: .init(uniqueKey: "daily-report"), logger: queueLogger)
                    }
                }
                return try await group.reduce(into: [Int64?]()) { $0.append($1) }
            }
            #expect(ids.compactMap { $0 }.count == 1)
            #expect(try await client.scalar("SELECT count(*)::int FROM jobs", as: Int.self) == 1)
            // Bulk enqueue skips the held key and duplicates within the batch.
            let bulk = try [0, 1, 2].map { try JobQueue.NewJob(RecordJob.self, .init(n: $0), options: .init(uniqueKey: $0 == 0 ? "daily-report" : "other")) }
            #expect(try await queue.enqueueMany(bulk, logger: queueLogger) == 1)
            // Once finished, the key is free again.
            try await client.query("UPDATE jobs SET state = 'completed', finished_at = now()", logger: queueLogger)
            #expect(try await queue.enqueue(RecordJob.self, .init(n: 9), options: .init(uniqueKey: "daily-report"), logger: queueLogger) != nil)
        }
    }

    @Test func rejectsInvalidOptions() async throws {
        try await withTestDatabase { client, _ in
            let queue = JobQueue(client: client)
            await #expect(throws: JobQueueError.self) {
                try await queue.enqueue(RecordJob.self, .init(n: 1), options: .init(priority: 12), logger: queueLogger)
            }
            await #expect(throws: JobQueueError.self) {
                try await queue.enqueue(RecordJob.self, .init(n: 1), options: .init(maxAttempts: 0), logger: queueLogger)
            }
            let count = try await client.scalar("SELECT count(*)::int FROM jobs", as: Int.self)
            #expect(count == 0)
        }
    }

    @Test func backoffGrowsWithJitterAndCaps() {
        let noJitter = (1...6).map { Backoff.delay(afterAttempt: $0, jitter: 0) }
        #expect(noJitter == [16, 31, 96, 271, 640, 1311].map { Duration.seconds($0) })
        #expect(Backoff.delay(afterAttempt: 100, jitter: 0) == .seconds(86_400))
        for _ in 0..<100 {
            let delay = Backoff.delay(afterAttempt: 2)
            #expect(delay >= .milliseconds(27_900) && delay <= .milliseconds(34_100))
        }
    }

    @Test func parsesQueueFlags() throws {
        #expect(try WorkerConfiguration.parseQueues("default=10,reports=2") == ["default": 10, "reports": 2])
        #expect(try WorkerConfiguration.parseQueues("mail", defaultConcurrency: 3) == ["mail": 3])
        #expect(throws: JobQueueError.self) { try WorkerConfiguration.parseQueues("x=0") }
        #expect(throws: JobQueueError.self) { try WorkerConfiguration.parseQueues("bad name=1") }
    }
}
