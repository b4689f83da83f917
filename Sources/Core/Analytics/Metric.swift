import Foundation

/// How a metric turns events into a number.
public enum Aggregation: String, Sendable, CaseIterable {
    case count
    case uniqueUsers = "unique_users"
    case sum, avg, min, max
    case p50, p90, p95, p99
    /// Built-in API analytics: share of events whose `status` property is 4xx / 5xx.
    case errorRate4xx = "error_rate_4xx"
    case errorRate5xx = "error_rate_5xx"

    /// Aggregations a user may define (the error rates are built-in only).
    public static let userDefinable: [Aggregation] = [.count, .uniqueUsers, .sum, .avg, .min, .max, .p50, .p90, .p95, .p99]

    /// Whether the aggregation reads a numeric property.
    public var needsProperty: Bool {
        switch self {
        case .count, .uniqueUsers: false
        default: true
        }
    }

    public var quantile: Double? {
        switch self {
        case .p50: 0.50
        case .p90: 0.90
        case .p95: 0.95
        case .p99: 0.99
        default: nil
        }
    }

    /// Unique users and percentiles keep a sketch per bucket.
    public var needsSketch: Bool {
        self == .uniqueUsers || quantile != nil
    }

    /// Counts and sums add up over a range; the others have no value for an empty one.
    public var isAdditive: Bool {
        self == .count || self == .sum || self == .uniqueUsers
    }
}

/// A metric as the rollups see it.
public struct MetricDefinition: Sendable, Equatable {
    public var id: UUID
    public var orgID: UUID
    public var name: String
    public var eventName: String
    public var aggregation: Aggregation
    public var property: String?
    public var groupBy: String?

    public init(
        id: UUID, orgID: UUID, name: String, eventName: String, aggregation: Aggregation, property: String?,
        groupBy: String?
    ) {
        self.id = id
        self.orgID = orgID
        self.name = name
        self.eventName = eventName
        self.aggregation = aggregation
        self.property = property
        self.groupBy = groupBy
    }
}

/// Names shared by the processes that write and read rollups.
public enum Rollups {
    /// The fresh-rollup job.
    public static let jobKind = "analytics.rollup"
    /// A new or changed metric's backfill over raw events.
    public static let backfillJobKind = "analytics.backfill"
    /// Unique key of the pending fresh-rollup job: at most one waits at a time.
    public static let jobUniqueKey = "analytics.rollup"
    /// NOTIFY channel: an organization's rollups changed (payload: JSON org and metrics).
    public static let notifyChannel = "analytics_rollups"
    /// Advisory lock serializing rollup writers (fresh runs, backfill slices, definition changes).
    public static let advisoryLockKey: Int64 = 0x726F_6C6C_7570  // "rollup"

    /// The backfill job's arguments; the API enqueues it by kind when a metric is written.
    public struct BackfillArguments: Codable, Sendable, Equatable {
        public var orgID: UUID
        public var metricID: UUID
        public var version: Int

        public init(orgID: UUID, metricID: UUID, version: Int) {
            self.orgID = orgID
            self.metricID = metricID
            self.version = version
        }

        /// One pending backfill per metric definition.
        public var uniqueKey: String { "\(backfillJobKind):\(metricID.uuidString.lowercased()):\(version)" }
    }
}

/// Bucket sizes stored in `rollups`.
public enum Granularity: String, Sendable, CaseIterable, Comparable {
    case minute, hour, day

    public var seconds: Int64 {
        switch self {
        case .minute: 60
        case .hour: 3600
        case .day: 86400
        }
    }

    /// The bucket holding `date` (UTC-aligned).
    public func bucket(of date: Date) -> Date {
        let epoch = Int64(date.timeIntervalSince1970.rounded(.down))
        let start = epoch - ((epoch % seconds) + seconds) % seconds
        return Date(timeIntervalSince1970: TimeInterval(start))
    }

    /// The first bucket start at or after `date`.
    public func ceiling(of date: Date) -> Date {
        let floor = bucket(of: date)
        return floor == date ? date : floor.addingTimeInterval(TimeInterval(seconds))
    }

    public static func < (lhs: Granularity, rhs: Granularity) -> Bool { lhs.seconds < rhs.seconds }
}
