import Scheduler

/// The platform's periodic jobs, declared in one place and upserted at every start.
public enum PlatformSchedules {
    public static let all: [ScheduleDefinition] = [
        // Partitions for coming months, and expiry of old ones. Daily is plenty: three
        // months are kept ahead, and the default partition catches anything else.
        ScheduleDefinition(
            name: "platform.partition-upkeep", expression: "17 3 * * *", timeZone: "UTC",
            jobKind: PartitionUpkeepJob.kind, queue: "maintenance", overlap: .skip),
        // Rollups are woken by ingestion; this catches a wake-up lost to a crash or a
        // rollup whose rows waited for a long transaction to end.
        ScheduleDefinition(
            name: "platform.rollup", expression: "*/5 * * * * *", timeZone: "UTC",
            jobKind: RollupJob.kind, queue: "rollups", overlap: .skip),
        // Expired export files are deleted; exports whose job was lost are marked failed.
        ScheduleDefinition(
            name: "platform.export-expiry", expression: "*/10 * * * *", timeZone: "UTC",
            jobKind: ExportExpiryJob.kind, queue: "maintenance", overlap: .skip),
    ]
}
