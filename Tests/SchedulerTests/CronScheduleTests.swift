import Foundation
@testable import Scheduler
import Testing

/// Fire times worked out by hand (calendar and tz database consulted, not this code).
@Suite struct CronScheduleTests {
    func fires(_ expression: String, tz: String = "UTC", from: String, count: Int) throws -> [String] {
        let schedule = try CronSchedule(expression, timeZone: tz)
        let formatter = ISO8601DateFormatter()
        var instant = Int64(formatter.date(from: from)!.timeIntervalSince1970)
        var out: [String] = []
        for _ in 0..<count {
            guard let next = schedule.next(after: instant) else { break }
            out.append(schedule.format(next))
            instant = next
        }
        return out
    }

    @Test(arguments: [
        // Vixie OR: the 13th or any Friday (2026-11-13 is a Friday; 2026-11-20, 27 Fridays).
        ("0 0 13 * FRI", "2026-11-01T00:00:00Z", ["2026-11-06T00:00:00+00:00", "2026-11-13T00:00:00+00:00", "2026-11-20T00:00:00+00:00", "2026-11-27T00:00:00+00:00", "2026-12-04T00:00:00+00:00"]),
        // */2 counts as unrestricted: odd days AND Mondays (2026-11-09 odd Monday, 11-23, 12-07).
        ("0 0 */2 * MON", "2026-11-01T00:00:00Z", ["2026-11-09T00:00:00+00:00", "2026-11-23T00:00:00+00:00", "2026-12-07T00:00:00+00:00"]),
        // Feb 29 only in leap years.
        ("0 12 29 2 *", "2026-01-01T00:00:00Z", ["2028-02-29T12:00:00+00:00", "2032-02-29T12:00:00+00:00"]),
        // The 31st skips short months.
        ("0 0 31 * *", "2026-01-31T00:00:00Z", ["2026-03-31T00:00:00+00:00", "2026-05-31T00:00:00+00:00", "2026-07-31T00:00:00+00:00", "2026-08-31T00:00:00+00:00"]),
        // @weekly = Sunday midnight (2026-11-29 is a Sunday).
        ("@weekly", "2026-11-25T12:00:00Z", ["2026-11-29T00:00:00+00:00", "2026-12-06T00:00:00+00:00"]),
        ("@yearly", "2026-11-25T12:00:00Z", ["2027-01-01T00:00:00+00:00"]),
        ("@monthly", "2026-11-25T12:00:00Z", ["2026-12-01T00:00:00+00:00", "2027-01-01T00:00:00+00:00"]),
        ("@hourly", "2026-11-25T12:00:00Z", ["2026-11-25T13:00:00+00:00"]),
        // Names and ranges; 7 is Sunday too.
        ("30 9 * JAN,JUL MON-FRI", "2026-12-31T12:00:00Z", ["2027-01-01T09:30:00+00:00", "2027-01-04T09:30:00+00:00"]),
        ("0 8 * * 7", "2026-11-25T00:00:00Z", ["2026-11-29T08:00:00+00:00"]),
        // Steps over ranges.
        ("1-30/7 0 1 1 *", "2026-06-01T00:00:00Z", ["2027-01-01T00:01:00+00:00", "2027-01-01T00:08:00+00:00", "2027-01-01T00:15:00+00:00", "2027-01-01T00:22:00+00:00", "2027-01-01T00:29:00+00:00", "2028-01-01T00:01:00+00:00"]),
        // Six fields: seconds first.
        ("*/20 * * * * *", "2026-11-25T12:00:05Z", ["2026-11-25T12:00:20+00:00", "2026-11-25T12:00:40+00:00", "2026-11-25T12:01:00+00:00"]),
        // Strictly after --from.
        ("0 12 * * *", "2026-11-25T12:00:00Z", ["2026-11-26T12:00:00+00:00"]),
    ] as [(String, String, [String])])
    func handWorkedFireTimes(expression: String, from: String, expected: [String]) throws {
        #expect(try fires(expression, from: from, count: expected.count) == expected)
    }

    // America/New_York: spring forward 2026-03-08 02:00 EST -> 03:00 EDT; fall back 2026-11-01 02:00 EDT -> 01:00 EST.
    @Test func newYorkSpringForward() throws {
        // Fixed time in the gap: once, at the first instant after it.
        #expect(try fires("30 2 * * *", tz: "America/New_York", from: "2026-03-07T12:00:00-05:00", count: 2)
            == ["2026-03-08T03:00:00-04:00", "2026-03-09T02:30:00-04:00"])
        // Several fixed times in the gap still run once.
        #expect(try fires("0,30 2 * * *", tz: "America/New_York", from: "2026-03-08T00:00:00-05:00", count: 2)
            == ["2026-03-08T03:00:00-04:00", "2026-03-09T02:00:00-04:00"])
        // Elapsed-time jobs: the skipped wall-clock times simply do not occur.
        #expect(try fires("*/15 * * * *", tz: "America/New_York", from: "2026-03-08T01:30:00-05:00", count: 3)
            == ["2026-03-08T01:45:00-05:00", "2026-03-08T03:00:00-04:00", "2026-03-08T03:15:00-04:00"])
        #expect(try fires("30 */2 * * *", tz: "America/New_York", from: "2026-03-08T00:00:00-05:00", count: 2)
            == ["2026-03-08T00:30:00-05:00", "2026-03-08T04:30:00-04:00"])
    }

    @Test func newYorkFallBack() throws {
        // Fixed time in the repeated hour: once, at the first occurrence.
        #expect(try fires("30 1 * * *", tz: "America/New_York", from: "2026-10-31T12:00:00-04:00", count: 2)
            == ["2026-11-01T01:30:00-04:00", "2026-11-02T01:30:00-05:00"])
        // Starting inside the second pass does not run it again.
        #expect(try fires("45 1 * * *", tz: "America/New_York", from: "2026-11-01T01:10:00-05:00", count: 1)
            == ["2026-11-02T01:45:00-05:00"])
        // Elapsed-time jobs: the repeated wall-clock times occur twice.
        #expect(try fires("*/30 * * * *", tz: "America/New_York", from: "2026-11-01T00:50:00-04:00", count: 5)
            == ["2026-11-01T01:00:00-04:00", "2026-11-01T01:30:00-04:00", "2026-11-01T01:00:00-05:00", "2026-11-01T01:30:00-05:00", "2026-11-01T02:00:00-05:00"])
        #expect(try fires("0 * * * *", tz: "America/New_York", from: "2026-11-01T00:30:00-04:00", count: 3)
            == ["2026-11-01T01:00:00-04:00", "2026-11-01T01:00:00-05:00", "2026-11-01T02:00:00-05:00"])
    }

    // Europe/Berlin: 2026-03-29 02:00 CET -> 03:00 CEST; 2026-10-25 03:00 CEST -> 02:00 CET.
    @Test func berlin() throws {
        #expect(try fires("30 2 * * *", tz: "Europe/Berlin", from: "2026-03-28T12:00:00+01:00", count: 2)
            == ["2026-03-29T03:00:00+02:00", "2026-03-30T02:30:00+02:00"])
        #expect(try fires("30 2 * * *", tz: "Europe/Berlin", from: "2026-10-24T12:00:00+02:00", count: 2)
            == ["2026-10-25T02:30:00+02:00", "2026-10-26T02:30:00+01:00"])
        #expect(try fires("*/15 * * * *", tz: "Europe/Berlin", from: "2026-10-25T02:40:00+02:00", count: 4)
            == ["2026-10-25T02:45:00+02:00", "2026-10-25T02:00:00+01:00", "2026-10-25T02:15:00+01:00", "2026-10-25T02:30:00+01:00"])
        #expect(try fires("*/15 * * * *", tz: "Europe/Berlin", from: "2026-03-29T01:40:00+01:00", count: 2)
            == ["2026-03-29T01:45:00+01:00", "2026-03-29T03:00:00+02:00"])
    }

    // Australia/Lord_Howe shifts by 30 minutes: 2026-04-05 02:00 (+11) -> 01:30 (+10:30);
    // 2026-10-04 02:00 (+10:30) -> 02:30 (+11).
    @Test func lordHoweHalfHourShifts() throws {
        #expect(try fires("30 2 * * *", tz: "Australia/Lord_Howe", from: "2026-10-03T12:00:00+10:30", count: 2)
            == ["2026-10-04T02:30:00+11:00", "2026-10-05T02:30:00+11:00"])
        #expect(try fires("15 2 * * *", tz: "Australia/Lord_Howe", from: "2026-10-03T12:00:00+10:30", count: 2)
            == ["2026-10-04T02:30:00+11:00", "2026-10-05T02:15:00+11:00"])
        #expect(try fires("30 1 * * *", tz: "Australia/Lord_Howe", from: "2026-04-04T12:00:00+11:00", count: 2)
            == ["2026-04-05T01:30:00+11:00", "2026-04-06T01:30:00+10:30"])
        #expect(try fires("*/15 * * * *", tz: "Australia/Lord_Howe", from: "2026-04-05T01:20:00+11:00", count: 5)
            == ["2026-04-05T01:30:00+11:00", "2026-04-05T01:45:00+11:00", "2026-04-05T01:30:00+10:30", "2026-04-05T01:45:00+10:30", "2026-04-05T02:00:00+10:30"])
        #expect(try fires("*/15 * * * *", tz: "Australia/Lord_Howe", from: "2026-10-04T01:50:00+10:30", count: 2)
            == ["2026-10-04T02:30:00+11:00", "2026-10-04T02:45:00+11:00"])
    }

    @Test(arguments: [
        ("61 * * * *", "minute"), ("* 24 * * *", "hour"), ("* * 0 * *", "day-of-month"), ("* * * 13 *", "month"),
        ("* * * * 8", "day-of-week"), ("* * * * FUNDAY", "day-of-week"), ("*/0 * * * *", "minute"),
        ("5-1 * * * *", "minute"), ("* * *", "expression"), ("@fortnightly", "expression"), ("1,,2 * * * *", "minute"),
        ("* * * * * * *", "expression"), ("0 0 30 2 *", "day-of-month"),
    ])
    func invalidExpressionsNameTheField(expression: String, field: String) {
        #expect {
            _ = try CronSchedule(expression, timeZone: "UTC")
        } throws: { error in
            (error as? CronParseError)?.field == field
        }
    }

    @Test func invalidTimeZone() {
        #expect(throws: CronParseError(field: "time zone", message: "'Mars/Olympus' is not an IANA time zone (e.g. Europe/Berlin, America/New_York, UTC)")) {
            _ = try CronSchedule("* * * * *", timeZone: "Mars/Olympus")
        }
    }

    @Test func civilTimeRoundTrips() {
        for seconds in stride(from: Int64(-86_400 * 400), to: 86_400 * 365 * 200, by: 86_400 * 37 + 3_601) {
            #expect(CivilTime(seconds: seconds).seconds == seconds)
        }
        #expect(CivilTime(seconds: 0).weekday == 4)  // 1970-01-01 was a Thursday
        #expect(CivilTime(year: 2026, month: 11, day: 25).weekday == 3)  // a Wednesday
    }
}
