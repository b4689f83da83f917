import NIOCore
import PostgresNIO

/// A one-dimensional `int8[]` or `float8[]` result column, read straight from the binary
/// wire format into a Swift array. NULL elements are skipped.
///
/// Decoding `[Int64]` through postgres-nio reads every element through its generic
/// decoder; a rollup run reads tens of thousands of user hashes in one array, and that
/// was 2.5 % of the server's CPU during full ingest with rollups in `run`.
public struct PostgresNumberArray<Element: PostgresNumberArrayElement>: PostgresDecodable, Sendable {
    public var elements: [Element]

    public init(_ elements: [Element]) {
        self.elements = elements
    }

    public init<JSONDecoder: PostgresJSONDecoder>(
        from buffer: inout ByteBuffer, type: PostgresDataType, format: PostgresFormat,
        context: PostgresDecodingContext<JSONDecoder>
    ) throws {
        guard format == .binary, type == Element.arrayType else { throw PostgresDecodingError.Code.typeMismatch }
        // Header: dimensions, has-NULLs flag, element type; then length and lower bound of
        // each dimension (an empty array has none).
        guard let (dimensions, _, elementType) = buffer.readMultipleIntegers(as: (Int32, Int32, UInt32).self),
            elementType == Element.elementType.rawValue
        else { throw PostgresDecodingError.Code.failure }
        guard dimensions != 0 else {
            elements = []
            return
        }
        guard dimensions == 1, let (count, _) = buffer.readMultipleIntegers(as: (Int32, Int32).self), count >= 0 else {
            throw PostgresDecodingError.Code.failure
        }
        var elements: [Element] = []
        elements.reserveCapacity(Int(count))
        for _ in 0..<count {
            guard let length = buffer.readInteger(as: Int32.self) else { throw PostgresDecodingError.Code.failure }
            if length == -1 { continue }
            guard length == 8, let bits = buffer.readInteger(as: UInt64.self) else { throw PostgresDecodingError.Code.failure }
            elements.append(Element(wireBits: bits))
        }
        guard buffer.readableBytes == 0 else { throw PostgresDecodingError.Code.failure }
        self.elements = elements
    }
}

/// An element type of `PostgresNumberArray`: 8 bytes on the wire, big-endian.
public protocol PostgresNumberArrayElement: Sendable {
    static var elementType: PostgresDataType { get }
    static var arrayType: PostgresDataType { get }
    init(wireBits: UInt64)
}

extension Int64: PostgresNumberArrayElement {
    public static var elementType: PostgresDataType { .int8 }
    public static var arrayType: PostgresDataType { .int8Array }
    public init(wireBits: UInt64) { self.init(bitPattern: wireBits) }
}

extension Double: PostgresNumberArrayElement {
    public static var elementType: PostgresDataType { .float8 }
    public static var arrayType: PostgresDataType { .float8Array }
    public init(wireBits: UInt64) { self.init(bitPattern: wireBits) }
}
