import Core
import Foundation
import Logging
import PostgresNIO
import ServiceLifecycle

/// A worker process's job runner: one `QueueRunner` per queue, a NOTIFY listener that
/// wakes them, a heartbeat that renews this process's leases, and the upkeep any
/// worker may do (rescuing jobs of dead workers, pruning finished jobs).
public final class Worker: Service, Sendable {
    let client: PostgresClient
    let listenURL: PostgresConnection.Configuration
    let configuration: WorkerConfiguration
    let runners: [String: QueueRunner]
    let completer: Completer
    let maintenance: QueueMaintenance
    let logger: Logger

    /// - Parameters:
    ///   - listenConfiguration: a connection for LISTEN (the pool's connections come and go).
    public init(
        client: PostgresClient, listenConfiguration: PostgresConnection.Configuration,
        registry: JobRegistry, configuration: WorkerConfiguration, logger: Logger
    ) {
        var logger = logger
        logger[metadataKey: "worker"] = .string(configuration.workerID)
        self.client = client
        self.listenURL = listenConfiguration
        self.configuration = configuration
        self.logger = logger
        let completer = Completer(client: client, logger: logger)
        self.completer = completer
        self.maintenance = QueueMaintenance(client: client, logger: logger)
        var runners: [String: QueueRunner] = [:]
        for (queue, concurrency) in configuration.queues {
            runners[queue] = QueueRunner(
                queue: queue, concurrency: concurrency, client: client, registry: registry,
                configuration: configuration, completer: completer, logger: logger)
        }
        self.runners = runners
    }

    public func run() async throws {
        logger.info("worker started", metadata: ["queues": "\(configuration.queues)"])
        await withDiscardingTaskGroup { group in
            // The runners and the completer run in tasks of their own, which the
            // cancellation of this one does not reach: cancelled or not, a stop lets
            // running jobs finish (up to the shutdown timeout) and writes their results or
            // releases them. In the cancelled task those writes failed at once, and the
            // jobs stayed `running` until their leases ran out (the rollup job, unique per
            // cluster, held every rollup for a lease).
            group.addTask { await Task { await self.completer.run() }.value }
            group.addTask {
                await Task {
                    await withDiscardingTaskGroup { runnerGroup in
                        for runner in self.runners.values {
                            runnerGroup.addTask { await runner.run() }
                        }
                    }
                    // Every runner has drained or released its jobs: flush the last results.
                    self.completer.stop()
                }.value
            }
            group.addTask { await self.listen() }
            group.addTask { await self.heartbeat() }
            group.addTask { await self.upkeep() }
            // Cancelled too (the service group cancels every service when one fails, such
            // as an HTTP port already taken): the loops wait on signals, not on
            // cancellation, so without a stop they retried at once without end, and the
            // process never exited nor stopped its embedded cluster.
            await withTaskCancellationOrGracefulShutdownHandler {
                while !stopRequested.isSet { await stopRequested.wait(timeout: .seconds(3600)) }
            } onCancelOrGracefulShutdown: {
                self.shutdown()
            }
            logger.info("worker stopping: no new jobs; waiting for running ones")
            for runner in runners.values { runner.stop() }
            // Stop the background loops; runners and the completer finish on their own.
            backgroundStop.signal()
        }
        logger.info("worker stopped")
    }

    /// Stops claiming, lets running jobs finish (up to the shutdown timeout), then
    /// returns from `run()`. SIGTERM does the same through the service group.
    public func shutdown() {
        stopRequested.signal()
    }

    private let stopRequested = WakeupSignal(latching: true)

    /// Ends listen/heartbeat/upkeep loops at shutdown.
    private let backgroundStop = WakeupSignal(latching: true)
    private var stopping: Bool { runners.values.first?.isStopping ?? true }

    /// Wakes the runner of the queue named in each notification. Reconnects when the
    /// connection drops, and polls every queue once after reconnecting.
    func listen() async {
        var attempt = 0
        while !stopping {
            do {
                let connection = try await PostgresConnection.connect(
                    configuration: listenURL, id: 0, logger: logger)
                attempt = 0
                wakeAll()
                try await withThrowingTaskGroup(of: Void.self) { group in
                    // Closing the connection at shutdown ends `listen(on:)`.
                    group.addTask {
                        while !self.stopping { await self.backgroundStop.wait(timeout: .milliseconds(500)) }
                        try? await connection.close()
                    }
                    group.addTask {
                        try await connection.listen(on: JobQueue.notifyChannel) { notifications in
                            for try await notification in notifications {
                                self.runners[notification.payload]?.wakeup.signal()
                            }
                        }
                    }
                    try await group.next()
                    group.cancelAll()
                }
                try? await connection.close()
            } catch {
                if stopping { return }
                attempt += 1
                logger.warning("job notifications lost; reconnecting", metadata: ["error": "\(String(reflecting: error))"])
                try? await Task.sleep(for: .milliseconds(min(250 * attempt, 3000)))
            }
        }
    }

    func wakeAll() {
        for runner in runners.values { runner.wakeup.signal() }
    }

    /// Renews the leases of every job this process runs.
    func heartbeat() async {
        while !stopping {
            await backgroundStop.wait(timeout: configuration.heartbeatInterval)
            if stopping { return }
            do {
                // Only jobs this process really holds: a claim whose reply was lost (the
                // database restarted mid-query) must expire and be rescued, not kept alive.
                let held = runners.values.flatMap(\.runningJobIDs) + completer.pendingJobIDs
                // Bounded (see withDeadline): a lost renewal must not stop the next one.
                try await withDeadline(configuration.leaseDuration) { [maintenance, configuration] in
                    try await maintenance.renewLeases(
                        ids: held, workerID: configuration.workerID, lease: configuration.leaseDuration)
                }
            } catch {
                logger.warning("lease heartbeat failed", metadata: ["error": "\(String(reflecting: error))"])
            }
        }
    }

    /// Rescues jobs whose worker died and prunes old finished jobs.
    func upkeep() async {
        var lastPrune = ContinuousClock.now - configuration.pruneInterval
        while !stopping {
            do {
                let rescued = try await withDeadline(.seconds(30)) { [maintenance] in try await maintenance.rescueExpiredLeases() }
                if rescued > 0 { logger.notice("rescued jobs of a lost worker", metadata: ["count": "\(rescued)"]) }
                if ContinuousClock.now - lastPrune >= configuration.pruneInterval {
                    lastPrune = ContinuousClock.now
                    try await maintenance.prune(olderThan: configuration.pruneAge)
                }
            } catch {
                // A stop ends this wait, and upkeep the stop cut short is no failure.
                await backgroundStop.wait(timeout: .milliseconds(200))
                if stopping || Task.isCancelled { break }
                logger.warning("queue upkeep failed", metadata: ["error": "\(String(reflecting: error))"])
            }
            await backgroundStop.wait(timeout: configuration.rescueInterval)
        }
    }
}
