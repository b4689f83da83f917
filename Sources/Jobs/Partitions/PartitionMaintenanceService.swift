import Core
import Logging
import PostgresNIO
import ServiceLifecycle

/// Runs partition upkeep at start and then hourly, so events always land in a monthly
/// partition. Several processes may run it at once: creation is serialised in SQL.
public struct PartitionMaintenanceService: Service {
    let partitions: EventPartitions
    let logger: Logger
    let interval: Duration

    public init(client: PostgresClient, logger: Logger, interval: Duration = .seconds(3600)) {
        self.partitions = EventPartitions(client: client)
        self.logger = logger
        self.interval = interval
    }

    public func run() async throws {
        while !Task.isCancelled && !Task.isShuttingDownGracefully {
            do {
                // Bounded like the upkeep job: a query lost on a connection that closed
                // under it would otherwise hold this loop, and the stop of its process.
                try await withDeadline(PartitionUpkeepJob.defaultTimeout ?? .seconds(3600)) { [partitions, logger] in
                    _ = try await partitions.ensure(logger: logger)
                    _ = try await partitions.dropExpired(logger: logger)
                }
            } catch is CancellationError {
                return
            } catch {
                logger.warning("partition upkeep failed; will retry", metadata: ["error": "\(String(reflecting: error))"])
            }
            try? await cancelWhenGracefulShutdown { try await Task.sleep(for: interval) }
        }
    }
}
