import PostgresNIO
import Scheduler

/// Every job kind the platform runs, registered in one place.
public enum JobCatalog {
    /// The queues a worker runs by default, with their concurrency.
    /// Rollups have their own queues so that fresh runs never wait behind reports, and
    /// a long backfill never holds the slot fresh runs need.
    public static let defaultQueues: [String: Int] = ["default": 20, "maintenance": 2, "rollups": 2, "backfill": 1, "exports": 2]

    public static func registry(client: PostgresClient) -> JobRegistry {
        var registry = JobRegistry()
        registry.register(NoopJob())
        registry.register(SleepJob())
        registry.register(PartitionUpkeepJob(client: client))
        registry.register(RollupJob(client: client))
        registry.register(BackfillJob(client: client))
        registry.register(ExportJob(client: client))
        registry.register(ExportExpiryJob(client: client))
        return registry
    }
}
