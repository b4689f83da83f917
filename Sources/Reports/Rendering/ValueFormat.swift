import Foundation

/// Numbers as a reader expects them on a report: grouped thousands, K/M/B beyond,
/// "—" for missing, NaN or infinite values.
enum ValueFormat {
    static func compact(_ value: Double?, unit: String? = nil) -> String {
        guard let value, value.isFinite else { return "—" }
        let magnitude = abs(value)
        let text: String
        switch magnitude {
        case 1e12...: text = trimmed(value / 1e12, digits: 2) + "T"
        case 1e9...: text = trimmed(value / 1e9, digits: 2) + "B"
        case 1e6...: text = trimmed(value / 1e6, digits: 2) + "M"
        case 1e4...: text = trimmed(value / 1e3, digits: 1) + "K"
        default: text = grouped(value)
        }
        guard let unit, !unit.isEmpty else { return text }
        return unit == "%" ? text + "%" : unit == "$" || unit == "€" || unit == "£" ? unit + text : text + " " + unit
    }

    /// Full precision with grouping: table cells and ticks.
    static func grouped(_ value: Double) -> String {
        guard value.isFinite else { return "—" }
        if value == value.rounded(), abs(value) < 1e15 {
            return group(String(Int64(value)))
        }
        let digits = abs(value) >= 100 ? 1 : abs(value) >= 1 ? 2 : 3
        return trimmed(value, digits: digits)
    }

    static func trimmed(_ value: Double, digits: Int) -> String {
        var text = String(format: "%.\(digits)f", value)
        if text.contains(".") {
            while text.hasSuffix("0") { text.removeLast() }
            if text.hasSuffix(".") { text.removeLast() }
        }
        let parts = text.split(separator: ".", maxSplits: 1)
        return group(String(parts[0])) + (parts.count > 1 ? "." + parts[1] : "")
    }

    static func group(_ integer: String) -> String {
        let negative = integer.hasPrefix("-")
        let digits = Array(negative ? integer.dropFirst() : Substring(integer))
        var out = ""
        for (index, digit) in digits.enumerated() {
            if index > 0, (digits.count - index) % 3 == 0 { out += "," }
            out.append(digit)
        }
        return (negative ? "-" : "") + out
    }

    /// "+12.5%" / "−3%" change from `previous` to `value`; nil when not meaningful.
    static func change(_ value: Double?, from previous: Double?) -> Double? {
        guard let value, let previous, value.isFinite, previous.isFinite, previous != 0 else { return nil }
        return (value - previous) / abs(previous) * 100
    }
}
