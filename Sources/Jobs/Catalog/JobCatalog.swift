import PostgresNIO
import Scheduler

/// Every job kind the platform runs, registered in one place.
public enum JobCatalog {
    /// The queues a worker runs by default, with their concurrency.
    public static let defaultQueues: [String: Int] = ["default": 20, "maintenance": 2]

    public static func registry(client: PostgresClient) -> JobRegistry {
        var registry = JobRegistry()
        registry.register(NoopJob())
        registry.register(SleepJob())
        registry.register(PartitionUpkeepJob(client: client))
        return registry
    }
}
