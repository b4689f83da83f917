import API
import ArgumentParser
import Core
import Foundation
import Jobs
import Logging
import PostgresNIO
import Scheduler
import ServiceLifecycle
import UnixSignals

/// Starts the long-running parts of one process under a service group and stops them
/// in reverse order on SIGTERM/SIGINT; then stops an embedded cluster it started.
///
/// The signals are trapped before anything starts, not by the group when it runs: until
/// then their default action ended the process and left the embedded cluster it had just
/// started running (SIGTERM 0.1 s after `serve` started: exit 143, PostgreSQL still up).
/// One that arrives while starting is kept and stops the group as soon as it runs.
struct ProcessRuntime {
    enum Role: CaseIterable {
        case api
        case worker
        case scheduler
    }

    let options: GlobalOptions
    let roles: [Role]
    var workerConfiguration = WorkerConfiguration(queues: JobCatalog.defaultQueues)

    func run() async throws {
        let configuration = try options.resolve()
        let logger = Logger(label: "analyticspro")
        let signals = await UnixSignalsSequence(trapping: .sigterm, .sigint)
        let session = try await DatabaseSession.open(configuration, logger: logger)
        // Still trapped while the cluster stops: a second SIGTERM must not cut that short.
        defer { withExtendedLifetime(signals) { session.close() } }

        let client = session.setup.makeClient(maximumConnections: 40)
        // The client is listed first so that it stops last.
        var services: [any Service] = [client]
        // Stops before the client: a cluster restarted during shutdown would only be stopped again.
        services.append(EmbeddedClusterKeeper(setup: session.setup, logger: logger))
        services.append(EmbeddedWriteback(setup: session.setup, logger: logger))
        services.append(PartitionMaintenanceService(client: client, logger: logger))
        if roles.contains(.worker) {
            services.append(
                Worker(
                    client: client, listenConfiguration: session.setup.url.connectionConfiguration,
                    registry: JobCatalog.registry(client: client), configuration: workerConfiguration,
                    logger: logger))
        }
        if roles.contains(.scheduler) {
            do {
                try await session.withClient { client in
                    try await ScheduleStore(client: client).upsertCodeSchedules(PlatformSchedules.all, logger: logger)
                }
            } catch {
                throw CLIFailure.runtime("cannot declare the platform's schedules: \(error)")
            }
            services.append(
                CronScheduler(
                    client: client, listenConfiguration: session.setup.url.connectionConfiguration, logger: logger))
        }
        if roles.contains(.api) {
            let app = APIServer.makeApplication(
                .init(client: client, listenConfiguration: session.setup.url.connectionConfiguration, logger: logger),
                host: configuration.host, port: configuration.port, logger: logger)
            services.append(app)
        }
        let group = ServiceGroup(
            configuration: .init(
                // A service that fails (the HTTP port taken) stops the others in order, as
                // on SIGTERM: the API, then the scheduler and the worker, the database client
                // last. Cancelled all at once, the pool could shut down under a worker still
                // claiming, which logged its claims as failures.
                services: services.map { .init(service: $0, failureTerminationBehavior: .gracefullyShutdownGroup) },
                gracefulShutdownSignals: [],
                cancellationSignals: [],
                logger: logger))
        do {
            try await withThrowingTaskGroup(of: Void.self) { tasks in
                tasks.addTask {
                    for await signal in signals {
                        logger.info("stopping", metadata: ["signal": "\(signal)"])
                        await group.triggerGracefulShutdown()
                    }
                }
                defer { tasks.cancelAll() }
                try await group.run()
            }
        } catch {
            throw CLIFailure.runtime(Self.describe(error, configuration: configuration))
        }
    }

    static func describe(_ error: any Error, configuration: AppConfiguration) -> String {
        let text = String(describing: error)
        if text.contains("Address already in use") || text.contains("EADDRINUSE") {
            return "cannot listen on \(configuration.host):\(configuration.port): address already in use"
        }
        if let error = error as? ServiceGroupError {
            return "stopped: \(error)"
        }
        return text
    }
}
