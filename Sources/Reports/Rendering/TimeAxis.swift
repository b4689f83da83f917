import Foundation

/// Ticks for a time axis at local boundaries of the report's time zone (hours, days,
/// months), labelled in that zone.
struct TimeAxis {
    let ticks: [(time: Date, label: String)]

    init(start: Date, end: Date, timeZone: TimeZone, maximumTicks: Int = 7) {
        var calendar = Calendar(identifier: .gregorian)
        calendar.timeZone = timeZone
        let span = max(end.timeIntervalSince(start), 1)
        let candidates: [(Calendar.Component, Int, String)] = [
            (.minute, 5, "HH:mm"), (.minute, 15, "HH:mm"), (.minute, 30, "HH:mm"),
            (.hour, 1, "HH:mm"), (.hour, 3, "HH:mm"), (.hour, 6, "MMM d HH:mm"), (.hour, 12, "MMM d HH:mm"),
            (.day, 1, "MMM d"), (.day, 2, "MMM d"), (.day, 7, "MMM d"), (.day, 14, "MMM d"),
            (.month, 1, "MMM yyyy"), (.month, 3, "MMM yyyy"), (.month, 6, "MMM yyyy"), (.year, 1, "yyyy"),
        ]
        let seconds: [Calendar.Component: Double] = [.minute: 60, .hour: 3600, .day: 86_400, .month: 2_629_746, .year: 31_556_952]
        let (component, step, format) = candidates.first { span / (seconds[$0.0]! * Double($0.1)) <= Double(maximumTicks) }
            ?? (.year, max(1, Int(span / seconds[.year]! / Double(maximumTicks)) + 1), "yyyy")
        let formatter = DateFormatter()
        formatter.locale = Locale(identifier: "en_US_POSIX")
        formatter.timeZone = timeZone
        formatter.dateFormat = format

        // First boundary at or after start, aligned to the unit in the local zone.
        let units: Set<Calendar.Component> = switch component {
        case .minute, .hour: [.year, .month, .day, .hour]
        case .day: [.year, .month, .day]
        default: [.year, .month]
        }
        var tick = calendar.date(from: calendar.dateComponents(units, from: start)) ?? start
        var ticks: [(Date, String)] = []
        var guardCount = 0
        while tick <= end, guardCount < 200 {
            if tick >= start { ticks.append((tick, formatter.string(from: tick))) }
            guard let next = calendar.date(byAdding: component, value: step, to: tick), next > tick else { break }
            tick = next
            guardCount += 1
        }
        self.ticks = ticks
    }
}
