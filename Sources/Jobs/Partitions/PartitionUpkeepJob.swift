import Logging
import PostgresNIO
import Scheduler

/// Partition upkeep as a job, so the scheduler can run it on a cron schedule.
public struct PartitionUpkeepJob: JobDefinition {
    public struct Arguments: Codable, Sendable {
        public init() {}
    }

    public static let kind = "maintenance.partitions"
    public static var defaultQueue: String { "maintenance" }
    let client: PostgresClient

    public init(client: PostgresClient) {
        self.client = client
    }

    public func run(_ arguments: Arguments, context: JobContext) async throws -> JobOutcome {
        let partitions = EventPartitions(client: client)
        try await partitions.ensure(logger: context.logger)
        try await partitions.dropExpired(logger: context.logger)
        return .success
    }
}
