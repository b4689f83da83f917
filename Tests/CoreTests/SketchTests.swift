@testable import Core
import Foundation
import Testing

@Suite struct SketchTests {
    /// A deterministic 64-bit generator, so failures reproduce.
    struct SplitMix: RandomNumberGenerator {
        var state: UInt64
        mutating func next() -> UInt64 {
            state &+= 0x9E37_79B9_7F4A_7C15
            var z = state
            z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
            z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
            return z ^ (z >> 31)
        }
    }

    @Test func hyperLogLogIsExactForSmallSets() {
        var sketch = HyperLogLog()
        sketch.insert(hashes: (0..<1000).map { UInt64($0) })
        sketch.insert(hashes: (500..<1024).map { UInt64($0) })  // overlaps count once
        #expect(sketch.isExact)
        #expect(sketch.estimate == 1024)
        let copy = HyperLogLog(serialized: sketch.serialized)
        #expect(copy == sketch)
    }

    @Test(arguments: [5_000, 100_000, 1_000_000])
    func hyperLogLogStaysWithinTwoPercent(count: Int) {
        var generator = SplitMix(state: UInt64(count))
        var sketch = HyperLogLog()
        var chunk: [UInt64] = []
        for _ in 0..<count {
            chunk.append(generator.next())
            if chunk.count == 10_000 {
                sketch.insert(hashes: chunk)
                chunk.removeAll(keepingCapacity: true)
            }
        }
        sketch.insert(hashes: chunk)
        #expect(!sketch.isExact)
        let error = abs(sketch.estimate - Double(count)) / Double(count)
        #expect(error <= 0.02, "relative error \(error) at \(count)")
    }

    @Test func hyperLogLogMergeEqualsTheUnion() {
        var generator = SplitMix(state: 7)
        let values = (0..<50_000).map { _ in generator.next() }
        var whole = HyperLogLog()
        whole.insert(hashes: values)
        // Three parts, overlapping, merged in different shapes (exact+exact, dense+exact, dense+dense).
        var a = HyperLogLog(), b = HyperLogLog(), c = HyperLogLog()
        a.insert(hashes: values[0..<20_000])
        b.insert(hashes: values[15_000..<15_500])
        c.insert(hashes: values[19_000..<50_000])
        var merged = b
        merged.merge(a)
        merged.merge(c)
        #expect(merged == whole)
        #expect(HyperLogLog(serialized: merged.serialized) == merged)
        // Small exact sets merging past the limit become dense, the same as inserting all.
        var small1 = HyperLogLog(), small2 = HyperLogLog(), both = HyperLogLog()
        small1.insert(hashes: values[0..<800])
        small2.insert(hashes: values[600..<1400])
        both.insert(hashes: values[0..<1400])
        small1.merge(small2)
        #expect(small1 == both)
    }

    @Test func ddSketchQuantilesWithinOnePercent() {
        var generator = SplitMix(state: 42)
        for distribution in 0..<3 {
            var values: [Double] = []
            for _ in 0..<100_000 {
                let u = Double(generator.next() >> 11) / Double(1 << 53)
                switch distribution {
                case 0: values.append(1 + u * 999)  // uniform latency in ms
                case 1: values.append(exp(u * 12))  // log-uniform over 5 decades
                default: values.append((u - 0.3) * 200)  // negatives, zero region, positives
                }
            }
            var sketch = DDSketch()
            for value in values { sketch.insert(value) }
            let sorted = values.sorted()
            for q in [0.0, 0.5, 0.9, 0.95, 0.99, 1.0] {
                let exact = sorted[Int((q * Double(sorted.count - 1)).rounded(.down))]
                let estimate = sketch.quantile(q)!
                // Values closer to zero than the sketch's indexable minimum are reported as 0.
                let tolerance = max(abs(exact) * DDSketch.relativeAccuracy, 1e-9) * 1.0000001
                #expect(abs(estimate - exact) <= tolerance, "q=\(q) exact=\(exact) estimate=\(estimate)")
            }
        }
    }

    @Test func ddSketchMergeEqualsTheUnion() {
        var generator = SplitMix(state: 9)
        let values = (0..<10_000).map { _ in Double(generator.next() % 100_000) / 10 - 100 }
        var whole = DDSketch(), left = DDSketch(), right = DDSketch()
        for value in values { whole.insert(value) }
        for value in values[..<3000] { left.insert(value) }
        for value in values[3000...] { right.insert(value) }
        left.merge(right)
        #expect(left == whole)
        #expect(DDSketch(serialized: whole.serialized) == whole)
        #expect(DDSketch().quantile(0.5) == nil)
        #expect(DDSketch(serialized: [9, 9]) == nil)
    }

    @Test func rollupStateValues() {
        var a = RollupState()
        a.count = 2
        a.sum = 10
        a.min = 3
        a.max = 7
        var b = RollupState()
        b.count = 3
        b.sum = 5
        b.min = 1
        b.max = 2
        a.merge(b)
        #expect(a.value(for: .count) == 5)
        #expect(a.value(for: .sum) == 15)
        #expect(a.value(for: .avg) == 3)
        #expect(a.value(for: .min) == 1)
        #expect(a.value(for: .max) == 7)
        #expect(RollupState().value(for: .avg) == nil)
        #expect(RollupState().value(for: .p95) == nil)
    }

    @Test func seriesBoundariesFollowTheTimeZone() throws {
        let formatter = ISO8601DateFormatter()
        let start = formatter.date(from: "2026-03-28T12:00:00Z")!
        let end = formatter.date(from: "2026-03-31T12:00:00Z")!
        let berlin = TimeZone(identifier: "Europe/Berlin")!
        let days = try RollupReader.boundaries(start: start, end: end, granularity: .day, timeZone: berlin)
        // Local midnights, across the spring-forward night (23 hours long).
        #expect(days.map { formatter.string(from: $0) } == [
            "2026-03-27T23:00:00Z", "2026-03-28T23:00:00Z", "2026-03-29T22:00:00Z", "2026-03-30T22:00:00Z",
            "2026-03-31T22:00:00Z",
        ])
        #expect(RollupReader.readGranularity(for: days, requested: .day) == .hour)
        let kolkata = try RollupReader.boundaries(
            start: start, end: end, granularity: .day, timeZone: TimeZone(identifier: "Asia/Kolkata")!)
        #expect(RollupReader.readGranularity(for: kolkata, requested: .day) == .minute)
        #expect(throws: AppError.self) {
            try RollupReader.boundaries(start: end, end: start, granularity: .hour, timeZone: berlin)
        }
        #expect(throws: AppError.self) {
            try RollupReader.boundaries(
                start: start, end: start.addingTimeInterval(30 * 86400), granularity: .minute, timeZone: berlin)
        }
        let cover = RollupReader.cover(
            start: formatter.date(from: "2026-03-28T10:30:00Z")!, end: formatter.date(from: "2026-03-30T02:15:00Z")!)
        #expect(formatter.string(from: cover.days.0) == "2026-03-29T00:00:00Z")
        #expect(formatter.string(from: cover.days.1) == "2026-03-30T00:00:00Z")
        #expect(formatter.string(from: cover.hours.0) == "2026-03-28T11:00:00Z")
        #expect(formatter.string(from: cover.hours.3) == "2026-03-30T02:00:00Z")
        #expect(formatter.string(from: cover.minutes.0) == "2026-03-28T10:30:00Z")
        #expect(formatter.string(from: cover.minutes.3) == "2026-03-30T02:15:00Z")
    }
}
