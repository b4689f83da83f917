import ArgumentParser
import Foundation
import Scheduler

struct CronCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "cron", abstract: "Cron expression tools.", subcommands: [Next.self])

    struct Next: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Print the next fire times strictly after --from, ISO 8601 with the zone's offset, one a line.",
            discussion: """
                EXPR: 5 fields (minute hour day-of-month month day-of-week), 6 with leading seconds, or
                @yearly @annually @monthly @weekly @daily @midnight @hourly. Daylight saving follows cronie.
                """)

        @Argument(help: "The cron expression (quote it).") var expression: String
        @Option(name: .customLong("tz"), help: "IANA time zone.") var timeZone: String = "UTC"
        @Option(help: "Start instant, ISO 8601 with offset (default: now).") var from: String?
        @Option(help: "How many fire times (1-10000).") var count: Int = 5

        func run() throws {
            let schedule: CronSchedule
            do {
                schedule = try CronSchedule(expression, timeZone: timeZone)
            } catch {
                throw CLIFailure.usage("invalid cron expression '\(expression)': \(error)")
            }
            guard (1...10_000).contains(count) else { throw CLIFailure.usage("invalid --count '\(count)': must be 1 to 10000") }
            var instant = Int64(Date().timeIntervalSince1970)
            if let from {
                guard let date = Self.parseInstant(from) else {
                    throw CLIFailure.usage("invalid --from '\(from)': expected ISO 8601 with offset, e.g. 2026-03-08T00:00:00-05:00")
                }
                instant = Int64(date.timeIntervalSince1970.rounded(.down))
            }
            var lines: [String] = []
            for _ in 0..<count {
                guard let next = schedule.next(after: instant) else { break }
                lines.append(schedule.format(next))
                instant = next
            }
            print(lines.joined(separator: "\n"))
        }

        static func parseInstant(_ text: String) -> Date? {
            let formatter = ISO8601DateFormatter()
            formatter.formatOptions = [.withInternetDateTime]
            if let date = formatter.date(from: text) { return date }
            formatter.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
            return formatter.date(from: text)
        }
    }
}
