import Foundation
import NIOConcurrencyHelpers

/// A time zone's UTC offsets as a sorted table of transitions, built once per zone from
/// the system's tz database; lookups are a binary search.
final class ZoneOffsets: Sendable {
    let identifier: String
    /// Instants (UTC seconds) at which the offset changes, ascending.
    let transitions: [Int64]
    /// offsets[i] applies before transitions[i]; offsets[transitions.count] after the last.
    let offsets: [Int32]

    private static let cache = NIOLockedValueBox<[String: ZoneOffsets]>([:])
    /// Transitions are tabulated over this span; outside it the nearest offset holds.
    static let span: ClosedRange<Int64> = 0...4_102_444_800  // 1970 ... 2100

    static func named(_ identifier: String) -> ZoneOffsets? {
        if let cached = cache.withLockedValue({ $0[identifier] }) { return cached }
        guard let zone = TimeZone(identifier: identifier) else { return nil }
        let offsets = ZoneOffsets(zone: zone)
        cache.withLockedValue { $0[identifier] = offsets }
        return offsets
    }

    init(zone: TimeZone) {
        identifier = zone.identifier
        var transitions: [Int64] = []
        var offsets: [Int32] = [Int32(zone.secondsFromGMT(for: Date(timeIntervalSince1970: Double(Self.span.lowerBound))))]
        var cursor = Date(timeIntervalSince1970: Double(Self.span.lowerBound))
        while let next = zone.nextDaylightSavingTimeTransition(after: cursor),
            next.timeIntervalSince1970 <= Double(Self.span.upperBound)
        {
            let offset = Int32(zone.secondsFromGMT(for: next))
            if offset != offsets.last {
                transitions.append(Int64(next.timeIntervalSince1970.rounded()))
                offsets.append(offset)
            }
            cursor = next
        }
        self.transitions = transitions
        self.offsets = offsets
    }

    /// Index of the offset in force at `instant`.
    @inline(__always)
    func index(at instant: Int64) -> Int {
        var low = 0, high = transitions.count
        while low < high {
            let mid = (low + high) >> 1
            if transitions[mid] <= instant { low = mid + 1 } else { high = mid }
        }
        return low
    }

    @inline(__always)
    func offset(at instant: Int64) -> Int64 { Int64(offsets[index(at: instant)]) }

    /// The first transition strictly after `instant`, if any.
    @inline(__always)
    func nextTransition(after instant: Int64) -> Int64? {
        let i = index(at: instant)
        return i < transitions.count ? transitions[i] : nil
    }

    /// The instants showing wall-clock time `local`: one normally, two when clocks fall
    /// back (earliest first), none in a spring-forward gap.
    func instants(forLocal local: Int64) -> (first: Int64?, gapEnd: Int64?) {
        // Candidate offsets: those in force around `local` (a day either side is plenty).
        let i = index(at: local - 86_400), j = index(at: local + 86_400)
        var best: Int64?
        for k in i...j {
            let candidate = local - Int64(offsets[k])
            if offset(at: candidate) == Int64(offsets[k]), best.map({ candidate < $0 }) ?? true {
                best = candidate
            }
        }
        if let best { return (best, nil) }
        // In a gap: the first instant after it is the transition that opened it.
        for k in i..<j where k < transitions.count {
            let transition = transitions[k]
            if transition + Int64(offsets[k]) <= local && local < transition + Int64(offsets[k + 1]) {
                return (nil, transition)
            }
        }
        return (nil, local - Int64(offsets[j]))
    }
}
