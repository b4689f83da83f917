import Foundation

/// A cron expression in an IANA time zone: computes fire times, following cronie's
/// daylight-saving rules.
///
/// - Jobs whose minute or hour field starts with `*` run by real elapsed time: a
///   wall-clock time skipped by spring-forward does not occur, one repeated by
///   fall-back occurs twice.
/// - Other jobs are fixed-time: a time in a spring-forward gap runs once at the first
///   instant after the gap; a repeated time runs once, at its first occurrence.
public struct CronSchedule: Sendable {
    public let expression: CronExpression
    public let timeZone: String
    let offsets: ZoneOffsets

    public init(_ expression: String, timeZone: String) throws(CronParseError) {
        let parsed = try CronExpression(expression)
        guard parsed.canEverMatch else {
            throw CronParseError(field: "day-of-month", message: "no day in the given months has that date; the schedule would never run")
        }
        guard let offsets = ZoneOffsets.named(timeZone) else {
            throw CronParseError(field: "time zone", message: "'\(timeZone)' is not an IANA time zone (e.g. Europe/Berlin, America/New_York, UTC)")
        }
        self.expression = parsed
        self.timeZone = timeZone
        self.offsets = offsets
    }

    /// The first fire time strictly after `date`.
    public func next(after date: Date) -> Date? {
        next(after: Int64(date.timeIntervalSince1970.rounded(.down))).map { Date(timeIntervalSince1970: Double($0)) }
    }

    /// The first fire time (seconds since 1970, UTC) strictly after `instant`.
    public func next(after instant: Int64) -> Int64? {
        expression.followsElapsedTime ? nextByElapsedTime(after: instant) : nextFixedTime(after: instant)
    }

    /// Walks the zone's offset segments: within a segment, wall-clock and real time move
    /// together, so the next wall-clock match converts directly.
    func nextByElapsedTime(after instant: Int64) -> Int64? {
        var from = instant
        var segment = offsets.index(at: instant + 1)
        while true {
            let offset = Int64(offsets.offsets[segment])
            let end = segment < offsets.transitions.count ? offsets.transitions[segment] : Int64.max
            guard let local = expression.nextLocalMatch(after: from + offset) else { return nil }
            let candidate = local - offset
            if candidate < end { return candidate }
            from = end - 1
            segment += 1
        }
    }

    /// Walks wall-clock matches and resolves each to one instant.
    func nextFixedTime(after instant: Int64) -> Int64? {
        var local = instant + offsets.offset(at: instant)
        for _ in 0..<1000 {
            guard let match = expression.nextLocalMatch(after: local) else { return nil }
            let resolved = offsets.instants(forLocal: match)
            if let at = resolved.first ?? resolved.gapEnd, at > instant { return at }
            local = match
        }
        return nil
    }

    /// `2026-03-08T03:00:00-04:00`: the instant in this schedule's zone.
    public func format(_ instant: Int64) -> String {
        let offset = offsets.offset(at: instant)
        let c = CivilTime(seconds: instant + offset)
        let sign = offset < 0 ? "-" : "+"
        let magnitude = abs(offset)
        func two(_ n: Int) -> String { n < 10 ? "0\(n)" : "\(n)" }
        let year = c.year < 1000 ? String(repeating: "0", count: 4 - String(c.year).count) + String(c.year) : String(c.year)
        return "\(year)-\(two(c.month))-\(two(c.day))T\(two(c.hour)):\(two(c.minute)):\(two(c.second))"
            + "\(sign)\(two(Int(magnitude / 3600))):\(two(Int(magnitude % 3600 / 60)))"
    }
}
