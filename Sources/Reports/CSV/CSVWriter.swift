/// Writes RFC 4180 CSV to a sink, row by row, so memory does not grow with the row count.
///
/// Cells that a spreadsheet would run as a formula (starting with `=`, `+`, `-`, `@`,
/// tab or carriage return) are prefixed with `'` — except plain numbers such as `-12.5`
/// or `+3`, which stay numbers (escaping them breaks negative values, as Grafana's
/// exports once did).
public struct CSVWriter<Sink: CSVSink> {
    public private(set) var sink: Sink
    public private(set) var rowsWritten = 0

    /// - Parameter byteOrderMark: start with a UTF-8 BOM so Excel reads the file as UTF-8.
    public init(sink: Sink, byteOrderMark: Bool = false) {
        self.sink = sink
        if byteOrderMark { self.sink.write([0xEF, 0xBB, 0xBF]) }
    }

    /// Lets the caller drain a buffering sink between rows (streaming responses).
    public mutating func withSink<T>(_ body: (inout Sink) -> T) -> T {
        body(&sink)
    }

    public mutating func writeRow(_ cells: [String]) {
        var line: [UInt8] = []
        line.reserveCapacity(cells.reduce(2) { $0 + $1.utf8.count + 3 })
        for (index, cell) in cells.enumerated() {
            if index > 0 { line.append(UInt8(ascii: ",")) }
            Self.append(Self.neutralised(cell), to: &line)
        }
        line.append(UInt8(ascii: "\r"))
        line.append(UInt8(ascii: "\n"))
        sink.write(line)
        rowsWritten += 1
    }

    /// Quotes a cell when it holds a comma, quote, CR or LF; doubles inner quotes.
    static func append(_ cell: String, to line: inout [UInt8]) {
        let needsQuotes = cell.utf8.contains { $0 == UInt8(ascii: ",") || $0 == UInt8(ascii: "\"") || $0 == 10 || $0 == 13 }
        guard needsQuotes else {
            line.append(contentsOf: cell.utf8)
            return
        }
        line.append(UInt8(ascii: "\""))
        for byte in cell.utf8 {
            if byte == UInt8(ascii: "\"") { line.append(byte) }
            line.append(byte)
        }
        line.append(UInt8(ascii: "\""))
    }

    /// The cell, made inert if a spreadsheet would evaluate it.
    public static func neutralised(_ cell: String) -> String {
        guard let first = cell.utf8.first else { return cell }
        switch first {
        case UInt8(ascii: "="), UInt8(ascii: "@"), 9, 13:
            return "'" + cell
        case UInt8(ascii: "+"), UInt8(ascii: "-"):
            return isPlainNumber(cell) ? cell : "'" + cell
        default:
            return cell
        }
    }

    /// `-12.5`, `+3`, `-1e-3`: a sign, digits, an optional fraction and exponent, nothing else.
    static func isPlainNumber(_ text: String) -> Bool {
        var bytes = text.utf8.makeIterator()
        guard let sign = bytes.next(), sign == UInt8(ascii: "+") || sign == UInt8(ascii: "-") else { return false }
        var digits = 0, sawDot = false, sawExponent = false, previous = sign
        while let byte = bytes.next() {
            switch byte {
            case UInt8(ascii: "0")...UInt8(ascii: "9"): digits += 1
            case UInt8(ascii: ".") where !sawDot && !sawExponent: sawDot = true
            case UInt8(ascii: "e"), UInt8(ascii: "E"):
                guard !sawExponent, digits > 0 else { return false }
                sawExponent = true
            case UInt8(ascii: "+"), UInt8(ascii: "-"):
                guard previous == UInt8(ascii: "e") || previous == UInt8(ascii: "E") else { return false }
            default: return false
            }
            previous = byte
        }
        return digits > 0 && previous != UInt8(ascii: "e") && previous != UInt8(ascii: "E")
            && previous != UInt8(ascii: "+") && previous != UInt8(ascii: "-")
    }
}

/// Where CSV bytes go: a buffer, a file, an HTTP response body.
public protocol CSVSink {
    mutating func write(_ bytes: [UInt8])
}

/// Collects everything in memory (small exports, tests).
public struct CSVBuffer: CSVSink {
    public private(set) var bytes: [UInt8] = []
    public init() {}
    public mutating func write(_ bytes: [UInt8]) { self.bytes.append(contentsOf: bytes) }
    public var text: String { String(decoding: bytes, as: UTF8.self) }
    /// Hands over what was written so far and starts empty.
    public mutating func take() -> [UInt8] {
        defer { bytes.removeAll(keepingCapacity: true) }
        return bytes
    }
}
