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
    /// Bounded like every platform job: a query lost on a connection that closed under
    /// it (a database restart) would otherwise hold this job — and the partitions and
    /// retention it keeps — until the worker restarts. Moving a month's rows out of the
    /// default partition is the long part.
    public static var defaultTimeout: Duration? { .seconds(3600) }
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
