import Foundation

/// The mergeable content of one rollup bucket: counts, sums and extremes, plus a
/// sketch when the aggregation needs one.
public struct RollupState: Sendable, Equatable {
    public var count: Int64 = 0
    public var sum: Double = 0
    public var min: Double?
    public var max: Double?
    public var users: HyperLogLog?
    public var quantiles: DDSketch?

    public init() {}

    public init(count: Int64, sum: Double, min: Double?, max: Double?, sketch: [UInt8]?, aggregation: Aggregation) {
        self.count = count
        self.sum = sum
        self.min = min
        self.max = max
        if let sketch, !sketch.isEmpty {
            if aggregation == .uniqueUsers {
                users = HyperLogLog(serialized: sketch)
            } else if aggregation.quantile != nil {
                quantiles = DDSketch(serialized: sketch)
            }
        }
    }

    public mutating func merge(_ other: RollupState) {
        count += other.count
        sum += other.sum
        if let value = other.min { min = Swift.min(min ?? value, value) }
        if let value = other.max { max = Swift.max(max ?? value, value) }
        if let theirs = other.users {
            if users == nil { users = theirs } else { users!.merge(theirs) }
        }
        if let theirs = other.quantiles {
            if quantiles == nil { quantiles = theirs } else { quantiles!.merge(theirs) }
        }
    }

    /// The sketch column's bytes.
    public var sketchBytes: [UInt8]? {
        users?.serialized ?? quantiles?.serialized
    }

    /// The bucket's (or merged range's) number; nil where there is nothing to aggregate.
    public func value(for aggregation: Aggregation) -> Double? {
        switch aggregation {
        case .count: return Double(count)
        case .uniqueUsers: return users?.estimate ?? 0
        case .sum: return sum
        case .avg, .errorRate4xx, .errorRate5xx: return count > 0 ? sum / Double(count) : nil
        case .min: return min
        case .max: return max
        case .p50, .p90, .p95, .p99:
            guard let estimate = quantiles?.quantile(aggregation.quantile!) else { return nil }
            // The exact extremes are known: an estimate never leaves them.
            return Swift.min(Swift.max(estimate, min ?? estimate), max ?? estimate)
        }
    }
}
