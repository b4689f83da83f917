import ArgumentParser
import Core
import Foundation
import Jobs
import Logging
import NIOConcurrencyHelpers
import PostgresNIO
import Scheduler

struct BenchCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bench",
        abstract: "Benchmarks against the configured database; print name=value lines.",
        subcommands: [Queue.self, Cron.self, Report.self, Rollup.self])

    struct Queue: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Job queue: bulk and single enqueue, drain of no-op jobs, enqueue-to-start latency.")

        @Option(help: "Jobs for the bulk enqueue and drain phases.") var jobs: Int = 200_000
        @Option(help: "Worker instances draining the queue (each with --concurrency).") var workers: Int = 1
        @Option(help: "Concurrent jobs per worker.") var concurrency: Int = 2000
        @Option(name: .customLong("batch"), help: "Jobs claimed per query.") var claimBatch: Int = 2000
        @Option(name: .customLong("single-jobs"), help: "Jobs enqueued one by one.") var singleJobs: Int = 20_000
        @Option(name: .customLong("latency-jobs"), help: "Jobs in the 100 jobs/s trickle.") var latencyJobs: Int = 1000
        @OptionGroup var options: GlobalOptions

        func run() async throws {
            guard jobs > 0, workers > 0, concurrency > 0, claimBatch > 0, singleJobs > 0, latencyJobs > 0 else {
                throw CLIFailure.usage("counts must be positive")
            }
            let configuration = try options.resolve()
            var logger = Logger(label: "analyticspro.bench")
            logger.logLevel = .warning
            let session = try await DatabaseSession.open(configuration, logger: logger)
            defer { session.close() }
            let bench = QueueBenchmark(
                url: session.setup.url, jobs: jobs, workers: workers, concurrency: concurrency,
                claimBatch: claimBatch, singleJobs: singleJobs, latencyJobs: latencyJobs, logger: logger)
            try await session.withClient { client in try await bench.run(client: client) }
        }
    }
}

extension BenchCommand {
    struct Cron: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Cron: next-fire computations per second; tick lag and idle CPU with many schedules loaded.")

        @Option(help: "Next-fire computations to time.") var computations: Int = 2_000_000
        @Option(help: "Schedules loaded for the tick-lag phase.") var schedules: Int = 100_000
        @Option(help: "Seconds the tick-lag phase runs.") var seconds: Int = 30
        @OptionGroup var options: GlobalOptions

        func run() async throws {
            guard computations > 0, schedules > 0, seconds > 2 else { throw CLIFailure.usage("counts must be positive, --seconds over 2") }
            print("next_per_s=\(try CronBenchmark.nextPerSecond(computations: computations))")
            let configuration = try options.resolve()
            var logger = Logger(label: "analyticspro.bench")
            logger.logLevel = .warning
            let session = try await DatabaseSession.open(configuration, logger: logger)
            defer { session.close() }
            let bench = CronBenchmark(url: session.setup.url, schedules: schedules, seconds: seconds, logger: logger)
            try await session.withClient { client in try await bench.run(client: client) }
        }
    }
}

/// Measures the queue on a queue of its own (`bench`), removed before and after.
struct QueueBenchmark: Sendable {
    let url: DatabaseURL
    let jobs: Int
    let workers: Int
    let concurrency: Int
    let claimBatch: Int
    let singleJobs: Int
    let latencyJobs: Int
    let logger: Logger
    static let queueName = "bench"

    func run(client: PostgresClient) async throws {
        try await clean(client)
        print("jobs=\(jobs)")
        print("workers=\(workers)")
        print("concurrency=\(concurrency)")

        // Bulk enqueue, 10,000 per statement.
        let bulkStart = ContinuousClock.now
        var inserted = 0
        for chunkStart in stride(from: 0, to: jobs, by: 10_000) {
            let chunk = try (chunkStart..<min(chunkStart + 10_000, jobs)).map { _ in
                try JobQueue.NewJob(NoopJob.self, .init(), options: .init(queue: Self.queueName))
            }
            inserted += try await JobQueue(client: client).enqueueMany(chunk, logger: logger)
        }
        let bulkSeconds = (ContinuousClock.now - bulkStart).seconds
        print("bulk_enqueue_jobs_per_s=\(Int(Double(inserted) / bulkSeconds))")

        // Drain: workers run the bulk-enqueued no-op jobs until none remain.
        // Handlers count their runs in memory; the database is asked only at the end,
        // so the measurement does not load the server it measures.
        let ran = NIOLockedValueBox(0)
        let expected = inserted
        let drainStart = ContinuousClock.now
        try await withWorkers(client: client, registry: noopRegistry { _ in ran.withLockedValue { $0 += 1 } }) {
            while ran.withLockedValue({ $0 }) < expected { try await Task.sleep(for: .milliseconds(2)) }
            while try await remaining(client) > 0 { try await Task.sleep(for: .milliseconds(5)) }
        }
        let drainSeconds = (ContinuousClock.now - drainStart).seconds
        let completed = try await client.query(
            "SELECT count(*)::int8 FROM jobs WHERE queue = \(Self.queueName) AND state = 'completed'", logger: logger
        ).collect().first?.decode(Int64.self) ?? 0
        print("drain_jobs_per_s=\(Int(Double(completed) / drainSeconds))")
        print("drain_completed=\(completed)")
        try await clean(client)

        // Single enqueue: one statement per job, 16 callers at once (as API nodes would).
        let singleStart = ContinuousClock.now
        let callers = 16
        try await withThrowingTaskGroup(of: Void.self) { group in
            for caller in 0..<callers {
                group.addTask {
                    for _ in stride(from: caller, to: singleJobs, by: callers) {
                        try await JobQueue(client: client).enqueue(
                            NoopJob.self, .init(), options: .init(queue: Self.queueName), logger: logger)
                    }
                }
            }
            try await group.waitForAll()
        }
        print("single_enqueue_jobs_per_s=\(Int(Double(singleJobs) / (ContinuousClock.now - singleStart).seconds))")
        print("single_enqueue_callers=\(callers)")
        try await clean(client)

        // Latency: a trickle of 100 jobs/s; enqueue wall time travels in the arguments.
        let latencies = NIOLockedValueBox<[Double]>([])
        let registry = noopRegistry { arguments in
            if let sent = arguments.enqueuedAt {
                let latency = (Date().timeIntervalSince1970 - sent) * 1000
                latencies.withLockedValue { $0.append(latency) }
            }
        }
        try await withWorkers(client: client, registry: registry) {
            try await Task.sleep(for: .milliseconds(300))  // listeners connected
            let start = ContinuousClock.now
            for index in 0..<latencyJobs {
                let due = start + .milliseconds(index * 10)
                try await Task.sleep(until: due)
                try await JobQueue(client: client).enqueue(
                    NoopJob.self, .init(enqueuedAt: Date().timeIntervalSince1970),
                    options: .init(queue: Self.queueName), logger: logger)
            }
            while try await remaining(client) > 0 { try await Task.sleep(for: .milliseconds(10)) }
        }
        let sorted = latencies.withLockedValue { $0 }.sorted()
        func percentile(_ p: Double) -> Double {
            sorted.isEmpty ? .nan : sorted[min(sorted.count - 1, Int((Double(sorted.count) * p).rounded(.up)) - 1)]
        }
        print(String(format: "latency_p50_ms=%.2f", percentile(0.50)))
        print(String(format: "latency_p99_ms=%.2f", percentile(0.99)))
        print("latency_samples=\(sorted.count)")
        try await clean(client)
    }

    func noopRegistry(_ onRun: @escaping @Sendable (NoopJob.Arguments) -> Void = { _ in }) -> JobRegistry {
        var registry = JobRegistry()
        registry.register(NoopJob(onRun: onRun))
        return registry
    }

    func withWorkers(client: PostgresClient, registry: JobRegistry, _ body: @Sendable () async throws -> Void) async throws {
        let instances = (0..<workers).map { _ -> Worker in
            var configuration = WorkerConfiguration(queues: [Self.queueName: concurrency])
            configuration.claimBatchSize = claimBatch
            configuration.pruneInterval = .seconds(3600)
            return Worker(
                client: client, listenConfiguration: url.connectionConfiguration, registry: registry,
                configuration: configuration, logger: logger)
        }
        try await withThrowingTaskGroup(of: Void.self) { group in
            for worker in instances { group.addTask { try await worker.run() } }
            defer { for worker in instances { worker.shutdown() } }
            try await body()
        }
    }

    func remaining(_ client: PostgresClient) async throws -> Int64 {
        try await client.query(
            """
            SELECT count(*)::int8 FROM jobs
            WHERE queue = \(Self.queueName) AND state IN ('available', 'scheduled', 'retryable', 'running')
            """, logger: logger
        ).collect().first?.decode(Int64.self) ?? 0
    }

    func clean(_ client: PostgresClient) async throws {
        try await client.query("DELETE FROM jobs WHERE queue = \(Self.queueName)", logger: logger)
        try await client.query("VACUUM ANALYZE jobs", logger: logger)
    }
}
