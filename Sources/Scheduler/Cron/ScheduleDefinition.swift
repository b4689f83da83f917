import Foundation
import Logging
import PostgresNIO

/// A schedule as its owner declares it: the platform's periodic jobs in code, or a
/// user's report schedule through the API.
public struct ScheduleDefinition: Sendable, Equatable {
    public enum MissedPolicy: String, Sendable { case skip, catchUp = "catch_up" }
    public enum OverlapPolicy: String, Sendable { case allow, skip }

    public var name: String
    public var expression: String
    public var timeZone: String
    public var jobKind: String
    public var arguments: String
    public var queue: String
    public var enabled: Bool
    public var missed: MissedPolicy
    /// With `catch_up`: missed ticks older than this are dropped.
    public var catchUpDeadline: Duration
    public var overlap: OverlapPolicy
    public var orgID: UUID?

    public init(
        name: String, expression: String, timeZone: String = "UTC", jobKind: String, arguments: String = "{}",
        queue: String = "default", enabled: Bool = true, missed: MissedPolicy = .skip,
        catchUpDeadline: Duration = .seconds(3600), overlap: OverlapPolicy = .allow, orgID: UUID? = nil
    ) {
        self.name = name
        self.expression = expression
        self.timeZone = timeZone
        self.jobKind = jobKind
        self.arguments = arguments
        self.queue = queue
        self.enabled = enabled
        self.missed = missed
        self.catchUpDeadline = catchUpDeadline
        self.overlap = overlap
        self.orgID = orgID
    }
}

/// Writes schedules. The database trigger resets `next_run_at` and notifies the
/// schedulers whenever the expression, zone or enabled flag changes.
public struct ScheduleStore: Sendable {
    public let client: PostgresClient

    public init(client: PostgresClient) {
        self.client = client
    }

    /// Creates or updates by name; the expression and zone are validated first.
    /// - Throws: `CronParseError` naming the bad field.
    public func upsert(_ definition: ScheduleDefinition, source: String = "user", logger: Logger) async throws {
        _ = try CronSchedule(definition.expression, timeZone: definition.timeZone)
        guard !definition.name.isEmpty, !definition.jobKind.isEmpty else {
            throw CronParseError(field: "schedule", message: "name and job kind are required")
        }
        let deadline = Int32(clamping: Int64(definition.catchUpDeadline.seconds.rounded()))
        try await client.query(
            """
            INSERT INTO cron_schedules (name, expression, timezone, job_kind, args, queue, enabled, missed_policy,
                                        catch_up_deadline_seconds, overlap_policy, source, org_id)
            VALUES (\(definition.name), \(definition.expression), \(definition.timeZone), \(definition.jobKind),
                    \(definition.arguments)::jsonb, \(definition.queue), \(definition.enabled), \(definition.missed.rawValue),
                    \(max(1, deadline)), \(definition.overlap.rawValue), \(source), \(definition.orgID))
            ON CONFLICT (name) DO UPDATE SET
                expression = EXCLUDED.expression, timezone = EXCLUDED.timezone, job_kind = EXCLUDED.job_kind,
                args = EXCLUDED.args, queue = EXCLUDED.queue, enabled = EXCLUDED.enabled,
                missed_policy = EXCLUDED.missed_policy, catch_up_deadline_seconds = EXCLUDED.catch_up_deadline_seconds,
                overlap_policy = EXCLUDED.overlap_policy, org_id = EXCLUDED.org_id
            """, logger: logger)
    }

    /// Declares the schedules defined in code (at every start).
    public func upsertCodeSchedules(_ definitions: [ScheduleDefinition], logger: Logger) async throws {
        for definition in definitions {
            try await upsert(definition, source: "code", logger: logger)
        }
    }
}
