import Core
import Foundation
import Logging
import NIOConcurrencyHelpers
import PostgresNIO
import ServiceLifecycle

/// Claims and runs the jobs of one queue, at most `concurrency` at a time.
final class QueueRunner: Sendable {
    let queue: String
    let concurrency: Int
    let client: PostgresClient
    let registry: JobRegistry
    let configuration: WorkerConfiguration
    let completer: Completer
    let logger: Logger
    /// New jobs (NOTIFY), freed capacity, or shutdown.
    let wakeup = WakeupSignal()
    /// Running jobs: attempt and the handler's task (cancelled if shutdown runs out of time).
    private let inFlight = NIOLockedValueBox<[Int64: (attempt: Int, task: Task<Void, Never>?)]>([:])
    private let stopping = NIOLockedValueBox(false)

    init(
        queue: String, concurrency: Int, client: PostgresClient, registry: JobRegistry,
        configuration: WorkerConfiguration, completer: Completer, logger: Logger
    ) {
        self.queue = queue
        self.concurrency = concurrency
        self.client = client
        self.registry = registry
        self.configuration = configuration
        self.completer = completer
        var logger = logger
        logger[metadataKey: "queue"] = .string(queue)
        self.logger = logger
    }

    func stop() {
        stopping.withLockedValue { $0 = true }
        wakeup.signal()
    }

    var isStopping: Bool { stopping.withLockedValue { $0 } }

    /// How long a claim may take before it counts as failed.
    var claimTimeout: Duration { max(.seconds(10), configuration.leaseDuration) }

    /// Smallest claim worth a query while other jobs of this queue are running.
    var minimumClaim: Int { max(1, min(configuration.claimBatchSize, concurrency) / 4) }

    /// Jobs this runner is executing right now.
    var runningJobIDs: [Int64] { inFlight.withLockedValue { Array($0.keys) } }


    /// Runs until `stop()`: then claims nothing more, lets running jobs finish within
    /// the shutdown timeout, cancels the rest and puts them back on the queue.
    func run() async {
        var failures = 0
        while !isStopping {
            let running = inFlight.withLockedValue { $0.count }
            let capacity = concurrency - running
            // While jobs run, wait for a worthwhile batch rather than claiming each
            // freed slot on its own: one query per job would cap throughput.
            guard capacity > 0, running == 0 || capacity >= minimumClaim else {
                await wakeup.wait(timeout: .milliseconds(5))
                continue
            }
            let wanted = min(capacity, configuration.claimBatchSize)
            let jobs: [ClaimedJob]
            do {
                // Bounded: a claim lost on a connection that closed under it never
                // returns (see withDeadline), and this runner would never claim again.
                // Jobs a timed-out claim did take come back when their lease expires.
                jobs = try await withDeadline(claimTimeout) { try await self.claim(limit: wanted) }
                failures = 0
            } catch {
                // The backoff first: a stop ends it, and a claim the stop cut short (its
                // cancellation, or the connection pool shutting down first) is no failure.
                failures += 1
                await wakeup.wait(timeout: .milliseconds(min(100 * (1 << min(failures, 5)), 3000)))
                if isStopping || Task.isCancelled { break }
                logger.warning("cannot claim jobs; retrying", metadata: ["error": "\(String(reflecting: error))"])
                continue
            }
            for job in jobs {
                // Registered before the task starts, so a fast job cannot finish first.
                inFlight.withLockedValue { $0[job.id] = (job.attempt, nil) }
                let task = Task {
                    await self.execute(job)
                    self.inFlight.withLockedValue { _ = $0.removeValue(forKey: job.id) }
                    self.wakeup.signal()
                }
                inFlight.withLockedValue { running in
                    if running[job.id] != nil { running[job.id]?.task = task }
                }
            }
            if jobs.count < wanted {
                await wakeup.wait(timeout: configuration.pollInterval)
            }
        }
        // Unstructured handler tasks: a handler stuck past the deadline (ignoring
        // cancellation, or waiting on a dead database) cannot hold the shutdown hostage.
        let deadline = ContinuousClock.now + configuration.shutdownTimeout
        while ContinuousClock.now < deadline, !inFlight.withLockedValue({ $0.isEmpty }) {
            try? await Task.sleep(for: .milliseconds(20))
        }
        let abandoned = inFlight.withLockedValue { running in
            let abandoned = running
            running.removeAll()
            return abandoned
        }
        if !abandoned.isEmpty {
            logger.warning("shutdown timeout: cancelling running jobs", metadata: ["count": "\(abandoned.count)"])
            for entry in abandoned.values { entry.task?.cancel() }
            await release(abandoned.mapValues(\.attempt))
        }
    }

    func claim(limit: Int) async throws -> [ClaimedJob] {
        let statement = ClaimJobsStatement(
            queue: queue, limit: Int32(limit), workerID: configuration.workerID,
            leaseMilliseconds: configuration.leaseDuration.milliseconds)
        return try await client.withOpenConnection { connection in
            var jobs: [ClaimedJob] = []
            for try await (id, kind, args, attempt, maxAttempts, timeoutMS, createdAt, uniqueKey)
                in try await connection.execute(statement, logger: logger)
            {
                jobs.append(
                    ClaimedJob(
                        id: id, kind: kind, queue: queue, arguments: Array(args.utf8), attempt: Int(attempt),
                        maxAttempts: Int(maxAttempts), timeout: timeoutMS.map { .milliseconds(Int64($0)) },
                        enqueuedAt: createdAt, uniqueKey: uniqueKey))
            }
            return jobs
        }
    }

    func execute(_ job: ClaimedJob) async {
        guard let entry = registry.entry(for: job.kind) else {
            completer.record(.init(id: job.id, attempt: job.attempt, outcome: .discard(reason: "unknown job kind '\(job.kind)'")))
            return
        }
        var jobLogger = logger
        jobLogger[metadataKey: "job_id"] = "\(job.id)"
        jobLogger[metadataKey: "job_kind"] = .string(job.kind)
        let context = JobContext(
            id: job.id, kind: job.kind, queue: job.queue, attempt: job.attempt, maxAttempts: job.maxAttempts,
            enqueuedAt: job.enqueuedAt, logger: jobLogger, uniqueKey: job.uniqueKey)
        let outcome: JobOutcome
        if let timeout = job.timeout ?? entry.timeout {
            outcome = await Self.run(entry, job: job, context: context, timeout: timeout)
        } else {
            do {
                outcome = try await entry.run(job.arguments, context)
            } catch {
                outcome = .retry(after: nil, reason: Self.describe(error))
            }
        }
        // Cancelled by shutdown: the job is released, not failed.
        if Task.isCancelled && isStopping { return }
        if case .retry(_, let reason) = outcome {
            jobLogger.warning("job attempt failed", metadata: ["attempt": "\(job.attempt)", "error": "\(reason)"])
        }
        completer.record(.init(id: job.id, attempt: job.attempt, outcome: outcome))
    }

    /// Runs the handler against a deadline; on expiry the handler's task is cancelled
    /// and the attempt fails without waiting for a handler that ignores cancellation.
    static func run(_ entry: JobRegistry.Entry, job: ClaimedJob, context: JobContext, timeout: Duration) async -> JobOutcome {
        do {
            return try await withDeadline(timeout) { try await entry.run(job.arguments, context) }
        } catch is DeadlineExceeded {
            return .retry(after: nil, reason: "timed out after \(timeout)")
        } catch {
            return .retry(after: nil, reason: describe(error))
        }
    }

    static func describe(_ error: any Error) -> String {
        let text = String(describing: error)
        return text.count > 2000 ? String(text.prefix(2000)) + "…" : text
    }

    /// Puts jobs cancelled by shutdown back on the queue; the interrupted attempt does not count.
    func release(_ jobs: [Int64: Int]) async {
        let ids = Array(jobs.keys), attempts = jobs.values.map { Int32($0) }
        do {
            // Bounded: with the database down the pool's wait for a connection is long,
            // and the leases bring these jobs back anyway.
            try await withDeadline(.seconds(5)) { try await self.releaseStatement(ids: ids, attempts: attempts) }
        } catch {
            logger.warning(
                "cannot release jobs on shutdown; they return when their lease expires",
                metadata: ["error": "\(String(reflecting: error))"])
        }
    }

    private func releaseStatement(ids: [Int64], attempts: [Int32]) async throws {
        try await client.query(
            """
            WITH released AS (
                UPDATE jobs j SET state = 'available', attempt = j.attempt - 1, run_at = now(),
                    attempted_by = NULL, lease_expires_at = NULL
                FROM unnest(\(ids)::int8[], \(attempts)::int4[]) AS c(id, attempt)
                WHERE j.id = c.id AND j.attempt = c.attempt AND j.state = 'running'
                RETURNING j.queue
            )
            SELECT pg_notify(\(JobQueue.notifyChannel), queue) FROM (SELECT DISTINCT queue FROM released) q
            """, logger: logger)
    }
}
