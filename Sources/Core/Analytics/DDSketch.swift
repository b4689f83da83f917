import Foundation

/// Quantiles with relative error, mergeable (Masson, Rim & Lee, "DDSketch", VLDB 2019).
///
/// A value v > 0 falls into bin ceil(log_γ v) with γ = (1 + α) / (1 - α); every bin's
/// representative is within α of every value in it, so any quantile is answered within
/// α relative error. Negative values use a mirrored store, values near zero a counter.
/// Bins only add up, so merging two sketches is exactly the sketch of the union.
/// With α = 1 %, values from 1e-9 to 1e12 need at most ~2,400 bins, so no collapsing.
public struct DDSketch: Sendable, Equatable {
    public static let relativeAccuracy = 0.01
    static let gamma = (1 + relativeAccuracy) / (1 - relativeAccuracy)
    static let logGamma = log(gamma)
    /// Below this magnitude a value counts as zero.
    static let minIndexable = 1e-9

    private(set) var positive: [Int32: UInt64] = [:]
    private(set) var negative: [Int32: UInt64] = [:]
    private(set) var zeroCount: UInt64 = 0

    public init() {}

    public var count: UInt64 {
        zeroCount + positive.values.reduce(0, +) + negative.values.reduce(0, +)
    }

    public mutating func insert(_ value: Double) {
        guard value.isFinite else { return }
        if abs(value) < Self.minIndexable {
            zeroCount += 1
        } else if value > 0 {
            positive[Self.index(value), default: 0] += 1
        } else {
            negative[Self.index(-value), default: 0] += 1
        }
    }

    public mutating func merge(_ other: DDSketch) {
        zeroCount += other.zeroCount
        positive.merge(other.positive, uniquingKeysWith: +)
        negative.merge(other.negative, uniquingKeysWith: +)
    }

    /// The value at rank ⌊q·(n−1)⌋ (0-based, ascending), within α; nil when empty.
    public func quantile(_ q: Double) -> Double? {
        let total = count
        guard total > 0, q.isFinite else { return nil }
        let rank = UInt64((min(max(q, 0), 1) * Double(total - 1)).rounded(.down))
        var seen: UInt64 = 0
        // Ascending: most negative first (largest negative index), then zero, then positive.
        for key in negative.keys.sorted(by: >) {
            seen += negative[key]!
            if seen > rank { return -Self.value(of: key) }
        }
        seen += zeroCount
        if seen > rank { return 0 }
        for key in positive.keys.sorted() {
            seen += positive[key]!
            if seen > rank { return Self.value(of: key) }
        }
        return positive.keys.max().map(Self.value(of:))
    }

    static func index(_ magnitude: Double) -> Int32 {
        Int32((log(magnitude) / logGamma).rounded(.up))
    }

    static func value(of index: Int32) -> Double {
        2 * pow(gamma, Double(index)) / (gamma + 1)
    }

    // MARK: Serialization: version, zero count, then (index, count) pairs per store.

    public var serialized: [UInt8] {
        var out: [UInt8] = [1]
        Self.append(zeroCount, to: &out)
        for store in [positive, negative] {
            Self.append(UInt64(store.count), to: &out)
            for key in store.keys.sorted() {
                Self.append(UInt64(UInt32(bitPattern: key)), to: &out)
                Self.append(store[key]!, to: &out)
            }
        }
        return out
    }

    public init?(serialized bytes: some Collection<UInt8>) {
        let bytes = Array(bytes)
        guard bytes.first == 1 else { return nil }
        var offset = 1
        func next() -> UInt64? {
            guard offset + 8 <= bytes.count else { return nil }
            var value: UInt64 = 0
            for k in 0..<8 { value |= UInt64(bytes[offset + k]) << (8 * UInt64(k)) }
            offset += 8
            return value
        }
        guard let zero = next() else { return nil }
        zeroCount = zero
        for store in 0..<2 {
            guard let entries = next(), entries <= UInt64(bytes.count) else { return nil }
            var bins: [Int32: UInt64] = [:]
            for _ in 0..<entries {
                guard let key = next(), let count = next() else { return nil }
                bins[Int32(bitPattern: UInt32(truncatingIfNeeded: key))] = count
            }
            if store == 0 { positive = bins } else { negative = bins }
        }
    }

    static func append(_ value: UInt64, to out: inout [UInt8]) {
        for k in 0..<8 { out.append(UInt8(truncatingIfNeeded: value >> (8 * UInt64(k)))) }
    }
}
