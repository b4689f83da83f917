@testable import Core
import Foundation
import Testing

@Suite struct CivilCalendarTests {
    /// The hand-written formatter agrees with Foundation's for any instant and offset.
    @Test func iso8601MatchesFoundation() {
        let formatter = ISO8601DateFormatter()
        formatter.formatOptions = [.withInternetDateTime]
        var writer = ISO8601Writer()
        var generator = SystemRandomNumberGenerator()
        for offset in [0, 3600, -18000, 19800, 20700, -34200] {
            formatter.timeZone = TimeZone(secondsFromGMT: offset)!
            var epoch: Int64 = 0
            for step in 0..<3000 {
                epoch = step < 1000 ? Int64(step) * 3600 + 1_700_000_000 : Int64.random(in: -2_000_000_000...4_000_000_000, using: &generator)
                var out: [UInt8] = []
                writer.append(epochSeconds: epoch, offsetSeconds: offset, to: &out)
                var single: [UInt8] = []
                CivilCalendar.appendISO8601(epochSeconds: epoch, offsetSeconds: offset, to: &single)
                let expected = formatter.string(from: Date(timeIntervalSince1970: TimeInterval(epoch)))
                #expect(String(decoding: out, as: UTF8.self) == expected)
                #expect(String(decoding: single, as: UTF8.self) == expected)
            }
        }
    }
}
