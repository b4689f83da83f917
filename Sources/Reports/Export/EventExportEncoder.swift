import Core

/// Event rows to CSV (RFC 4180, formulas neutralised, optional BOM) or NDJSON bytes,
/// buffered: callers take the bytes whenever `pendingBytes` is worth a write.
public struct EventExportEncoder {
    public enum Format: String, Sendable { case csv, ndjson }

    public let format: Format
    private var csv: CSVWriter<CSVBuffer>
    private var lines: [UInt8] = []
    public private(set) var rows = 0

    public init(format: Format, byteOrderMark: Bool = false) {
        self.format = format
        csv = CSVWriter(sink: CSVBuffer(), byteOrderMark: byteOrderMark)
        if format == .csv { csv.writeRow(EventExportSource.columns) }
    }

    public var pendingBytes: Int { format == .csv ? csv.sink.bytes.count : lines.count }

    public mutating func append(_ row: EventExportSource.Row) {
        let (id, name, time, received, user, session, properties) = row
        rows += 1
        switch format {
        case .csv:
            csv.writeRow([id, name, time, received, user ?? "", session ?? "", properties])
        case .ndjson:
            lines += #"{"id":""#.utf8
            lines += id.utf8
            lines += #"","name":"#.utf8
            JSONString.append(name, to: &lines)
            lines += #","timestamp":""#.utf8
            lines += time.utf8
            lines += #"","received_at":""#.utf8
            lines += received.utf8
            lines += #"","user_id":"#.utf8
            if let user { JSONString.append(user, to: &lines) } else { lines += "null".utf8 }
            lines += #","session_id":"#.utf8
            if let session { JSONString.append(session, to: &lines) } else { lines += "null".utf8 }
            lines += #","properties":"#.utf8
            lines += properties.utf8
            lines += "}\n".utf8
        }
    }

    /// The bytes written since the last call.
    public mutating func take() -> [UInt8] {
        switch format {
        case .csv:
            return csv.withSink { $0.take() }
        case .ndjson:
            defer { lines.removeAll(keepingCapacity: true) }
            return lines
        }
    }
}
