import Foundation

/// A parsed cron expression: five Vixie fields, or six with leading seconds, or a macro.
///
/// Fields are bitsets, so matching and "next allowed value" are a shift and a
/// trailing-zero count; `CronSchedule` uses them to find fire times without stepping
/// through every minute.
public struct CronExpression: Sendable, Equatable, CustomStringConvertible {
    public let source: String
    let seconds: UInt64  // bits 0...59
    let minutes: UInt64  // bits 0...59
    let hours: UInt32  // bits 0...23
    let daysOfMonth: UInt32  // bits 1...31
    let months: UInt16  // bits 1...12
    let daysOfWeek: UInt8  // bits 0...6, Sunday = 0
    /// cronie: a field is restricted unless it starts with `*` (so `*/2` is not).
    let dayOfMonthRestricted: Bool
    let dayOfWeekRestricted: Bool
    /// cronie's DST rule: jobs whose minute or hour field starts with `*` follow real
    /// elapsed time; the others are fixed wall-clock times.
    public let followsElapsedTime: Bool

    public var description: String { source }

    static let macros: [String: String] = [
        "@yearly": "0 0 1 1 *", "@annually": "0 0 1 1 *", "@monthly": "0 0 1 * *",
        "@weekly": "0 0 * * 0", "@daily": "0 0 * * *", "@midnight": "0 0 * * *", "@hourly": "0 * * * *",
    ]

    public init(_ text: String) throws(CronParseError) {
        let trimmed = text.trimmingCharacters(in: .whitespaces)
        self.source = trimmed
        var expanded = trimmed
        if trimmed.hasPrefix("@") {
            guard let macro = Self.macros[trimmed.lowercased()] else {
                throw CronParseError(field: "expression", message: "unknown macro '\(trimmed)'; use @yearly, @annually, @monthly, @weekly, @daily, @midnight or @hourly")
            }
            expanded = macro
        }
        var fields = expanded.split(whereSeparator: { $0 == " " || $0 == "\t" }).map(String.init)
        switch fields.count {
        case 5: fields.insert("0", at: 0)
        case 6: break
        default:
            throw CronParseError(
                field: "expression",
                message: "expected 5 fields (minute hour day-of-month month day-of-week) or 6 with leading seconds, got \(fields.count)")
        }
        seconds = try Self.parse(fields[0], .second)
        minutes = try Self.parse(fields[1], .minute)
        hours = UInt32(try Self.parse(fields[2], .hour))
        daysOfMonth = UInt32(try Self.parse(fields[3], .dayOfMonth))
        months = UInt16(try Self.parse(fields[4], .month))
        var dow = try Self.parse(fields[5], .dayOfWeek)
        if dow & (1 << 7) != 0 { dow = (dow | 1) & ~(1 << 7) }  // 7 is Sunday too
        daysOfWeek = UInt8(dow)
        dayOfMonthRestricted = !fields[3].hasPrefix("*")
        dayOfWeekRestricted = !fields[5].hasPrefix("*")
        followsElapsedTime = fields[1].hasPrefix("*") || fields[2].hasPrefix("*")
    }

    enum Field: String {
        case second, minute, hour, dayOfMonth = "day-of-month", month, dayOfWeek = "day-of-week"

        var range: ClosedRange<Int> {
            switch self {
            case .second, .minute: 0...59
            case .hour: 0...23
            case .dayOfMonth: 1...31
            case .month: 1...12
            case .dayOfWeek: 0...7
            }
        }

        var names: [String: Int] {
            switch self {
            case .month:
                ["JAN": 1, "FEB": 2, "MAR": 3, "APR": 4, "MAY": 5, "JUN": 6, "JUL": 7, "AUG": 8, "SEP": 9, "OCT": 10, "NOV": 11, "DEC": 12]
            case .dayOfWeek: ["SUN": 0, "MON": 1, "TUE": 2, "WED": 3, "THU": 4, "FRI": 5, "SAT": 6]
            default: [:]
            }
        }
    }

    static func parse(_ text: String, _ field: Field) throws(CronParseError) -> UInt64 {
        var bits: UInt64 = 0
        for part in text.split(separator: ",", omittingEmptySubsequences: false) {
            guard !part.isEmpty else { throw CronParseError(field: field.rawValue, message: "empty list item in '\(text)'") }
            let pieces = part.split(separator: "/", omittingEmptySubsequences: false)
            guard pieces.count <= 2 else { throw CronParseError(field: field.rawValue, message: "more than one '/' in '\(part)'") }
            var step = 1
            if pieces.count == 2 {
                guard let value = Int(pieces[1]), value > 0 else {
                    throw CronParseError(field: field.rawValue, message: "step '\(pieces[1])' must be a positive number")
                }
                guard value <= field.range.upperBound else {
                    throw CronParseError(field: field.rawValue, message: "step \(value) is larger than the field's range \(field.range.lowerBound)-\(field.range.upperBound)")
                }
                step = value
            }
            let base = pieces[0]
            var low: Int, high: Int
            if base == "*" {
                low = field.range.lowerBound
                high = field == .dayOfWeek ? 6 : field.range.upperBound
            } else {
                let bounds = base.split(separator: "-", omittingEmptySubsequences: false)
                guard bounds.count <= 2 else { throw CronParseError(field: field.rawValue, message: "bad range '\(base)'") }
                low = try value(String(bounds[0]), field)
                high = bounds.count == 2 ? try value(String(bounds[1]), field) : (pieces.count == 2 ? field.range.upperBound : low)
                if field == .dayOfWeek, bounds.count == 1, pieces.count == 2 { high = 6 }
                guard low <= high else {
                    throw CronParseError(field: field.rawValue, message: "range '\(base)' runs backwards")
                }
            }
            for value in stride(from: low, through: high, by: step) { bits |= 1 << UInt64(value) }
        }
        return bits
    }

    static func value(_ text: String, _ field: Field) throws(CronParseError) -> Int {
        if let named = field.names[text.uppercased()] { return named }
        guard let number = Int(text) else {
            let hint = field.names.isEmpty ? "" : " or a name like \(field == .month ? "JAN" : "MON")"
            throw CronParseError(field: field.rawValue, message: "'\(text)' is not a number\(hint)")
        }
        guard field.range.contains(number) else {
            throw CronParseError(
                field: field.rawValue, message: "\(number) is out of range \(field.range.lowerBound)-\(field.range.upperBound)")
        }
        return number
    }
}

/// Why an expression was refused, naming the field.
public struct CronParseError: Error, CustomStringConvertible, Sendable, Equatable {
    public let field: String
    public let message: String
    public var description: String { "\(field) field: \(message)" }
}

