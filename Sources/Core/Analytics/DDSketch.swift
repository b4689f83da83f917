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

    private(set) var positive = Bins()
    private(set) var negative = Bins()
    private(set) var zeroCount: UInt64 = 0

    /// Contiguous bin counts from `offset`: the indexes of one metric's values are
    /// dense, and arrays merge and decode far faster than dictionaries (a dashboard
    /// merges hundreds of sketches per request).
    struct Bins: Sendable, Equatable {
        var offset: Int32 = 0
        var counts: [UInt64] = []

        var total: UInt64 { counts.reduce(0, +) }

        mutating func add(_ index: Int32, _ count: UInt64 = 1) {
            if counts.isEmpty {
                offset = index
                counts = [count]
                return
            }
            if index < offset {
                counts.insert(contentsOf: repeatElement(0, count: Int(offset - index)), at: 0)
                offset = index
            } else if Int(index - offset) >= counts.count {
                counts.append(contentsOf: repeatElement(0, count: Int(index - offset) - counts.count + 1))
            }
            counts[Int(index - offset)] += count
        }

        mutating func merge(_ other: Bins) {
            guard !other.counts.isEmpty else { return }
            if counts.isEmpty {
                self = other
                return
            }
            // Grow once to cover both ranges, then add element-wise.
            add(other.offset, 0)
            add(other.offset + Int32(other.counts.count - 1), 0)
            let shift = Int(other.offset - offset)
            for (position, count) in other.counts.enumerated() { counts[shift + position] += count }
        }

        /// (index, count) pairs with a count, ascending by index.
        var entries: [(Int32, UInt64)] {
            counts.enumerated().compactMap { $0.element > 0 ? (offset + Int32($0.offset), $0.element) : nil }
        }
    }

    public init() {}

    public var count: UInt64 {
        zeroCount + positive.total + negative.total
    }

    public mutating func insert(_ value: Double) {
        guard value.isFinite else { return }
        if abs(value) < Self.minIndexable {
            zeroCount += 1
        } else if value > 0 {
            positive.add(Self.index(value))
        } else {
            negative.add(Self.index(-value))
        }
    }

    public mutating func merge(_ other: DDSketch) {
        zeroCount += other.zeroCount
        positive.merge(other.positive)
        negative.merge(other.negative)
    }

    /// The value at rank ⌊q·(n−1)⌋ (0-based, ascending), within α; nil when empty.
    public func quantile(_ q: Double) -> Double? {
        let total = count
        guard total > 0, q.isFinite else { return nil }
        let rank = UInt64((min(max(q, 0), 1) * Double(total - 1)).rounded(.down))
        var seen: UInt64 = 0
        // Ascending: most negative first (largest negative index), then zero, then positive.
        for (key, count) in negative.entries.reversed() {
            seen += count
            if seen > rank { return -Self.value(of: key) }
        }
        seen += zeroCount
        if seen > rank { return 0 }
        for (key, count) in positive.entries {
            seen += count
            if seen > rank { return Self.value(of: key) }
        }
        return positive.entries.last.map { Self.value(of: $0.0) }
    }

    static func index(_ magnitude: Double) -> Int32 {
        Int32((log(magnitude) / logGamma).rounded(.up))
    }

    static func value(of index: Int32) -> Double {
        2 * pow(gamma, Double(index)) / (gamma + 1)
    }

    // MARK: Serialization: version, zero count, then per store its offset, length and counts.

    public var serialized: [UInt8] {
        var out: [UInt8] = [2]
        out.reserveCapacity(1 + 8 * (5 + positive.counts.count + negative.counts.count))
        Self.append(zeroCount, to: &out)
        for store in [positive, negative] {
            Self.append(UInt64(UInt32(bitPattern: store.offset)), to: &out)
            Self.append(UInt64(store.counts.count), to: &out)
            for count in store.counts { Self.append(count, to: &out) }
        }
        return out
    }

    public init?(serialized bytes: some Collection<UInt8>) {
        let bytes = Array(bytes)
        guard bytes.first == 2 else { return nil }
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
            guard let start = next(), let length = next(), length <= UInt64(bytes.count / 8) else { return nil }
            var bins = Bins(offset: Int32(bitPattern: UInt32(truncatingIfNeeded: start)), counts: [])
            bins.counts.reserveCapacity(Int(length))
            for _ in 0..<length {
                guard let count = next() else { return nil }
                bins.counts.append(count)
            }
            if store == 0 { positive = bins } else { negative = bins }
        }
    }

    static func append(_ value: UInt64, to out: inout [UInt8]) {
        for k in 0..<8 { out.append(UInt8(truncatingIfNeeded: value >> (8 * UInt64(k)))) }
    }
}
