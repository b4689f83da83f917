/// Lets stored JSON (metric filters, dashboard configs) sit inside `Encodable` responses.
extension JSONValue: Encodable {
    public func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        switch self {
        case .null: try container.encodeNil()
        case .bool(let value): try container.encode(value)
        case .number(let value): try container.encode(value)
        case .string(let value): try container.encode(value)
        case .array(let values): try container.encode(values)
        case .object(let values): try container.encode(values)
        }
    }

    /// Parses JSON text the database produced (trusted, so any failure is a bug → null).
    static func parse(text: String) -> JSONValue {
        var bytes = Array(text.utf8)
        return (try? bytes.withUnsafeMutableBufferPointer { try JSONParser.parse(UnsafeBufferPointer($0)) }) ?? .null
    }
}
