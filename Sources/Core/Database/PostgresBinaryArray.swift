import Foundation
import NIOCore
import PostgresNIO

/// A one-dimensional PostgreSQL array bound as one parameter, written in the binary wire
/// format element by element as it is built.
///
/// Binding a Swift array makes postgres-nio encode every element through its generic
/// encoder when the query is sent; for the ingestion path's ten arrays of 2,000 events
/// that was 5 % of the server's CPU. Appending straight into a buffer costs a copy.
public struct PostgresBinaryArray<Element: PostgresBinaryArrayElement>: PostgresNonThrowingEncodable, Sendable {
    private var elements: ByteBuffer
    public private(set) var count = 0

    public init(reservingCapacity bytes: Int = 1024) {
        elements = ByteBufferAllocator().buffer(capacity: bytes)
    }

    public mutating func append(_ element: Element) {
        element.writeElement(to: &elements)
        count += 1
    }

    public static var psqlType: PostgresDataType { Element.arrayType }
    public static var psqlFormat: PostgresFormat { .binary }

    public func encode<JSONEncoder: PostgresJSONEncoder>(
        into buffer: inout ByteBuffer, context: PostgresEncodingContext<JSONEncoder>
    ) {
        // Header: dimensions, has-NULLs flag, element type; then length and lower bound
        // of the one dimension (an empty array has no dimension).
        buffer.writeInteger(Int32(count == 0 ? 0 : 1))
        buffer.writeInteger(Int32(0))
        buffer.writeInteger(Element.elementType.rawValue)
        if count > 0 {
            buffer.writeInteger(Int32(count))
            buffer.writeInteger(Int32(1))
            buffer.writeImmutableBuffer(elements)
        }
    }
}

/// An element type of `PostgresBinaryArray`: its types and its binary form, length first.
public protocol PostgresBinaryArrayElement: Sendable {
    static var elementType: PostgresDataType { get }
    static var arrayType: PostgresDataType { get }
    func writeElement(to buffer: inout ByteBuffer)
}

extension String: PostgresBinaryArrayElement {
    public static var elementType: PostgresDataType { .text }
    public static var arrayType: PostgresDataType { .textArray }
    public func writeElement(to buffer: inout ByteBuffer) {
        let lengthIndex = buffer.writerIndex
        buffer.writeInteger(Int32(0))
        let written = buffer.writeString(self)
        buffer.setInteger(Int32(written), at: lengthIndex)
    }
}

extension UUID: PostgresBinaryArrayElement {
    public static var elementType: PostgresDataType { .uuid }
    public static var arrayType: PostgresDataType { .uuidArray }
    public func writeElement(to buffer: inout ByteBuffer) {
        buffer.writeInteger(Int32(16))
        withUnsafeBytes(of: uuid) { buffer.writeBytes($0) }
    }
}

extension Bool: PostgresBinaryArrayElement {
    public static var elementType: PostgresDataType { .bool }
    public static var arrayType: PostgresDataType { .boolArray }
    public func writeElement(to buffer: inout ByteBuffer) {
        buffer.writeInteger(Int32(1))
        buffer.writeInteger(UInt8(self ? 1 : 0))
    }
}

extension Int32: PostgresBinaryArrayElement {
    public static var elementType: PostgresDataType { .int4 }
    public static var arrayType: PostgresDataType { .int4Array }
    public func writeElement(to buffer: inout ByteBuffer) {
        buffer.writeInteger(Int32(4))
        buffer.writeInteger(self)
    }
}

extension Date: PostgresBinaryArrayElement {
    public static var elementType: PostgresDataType { .timestamptz }
    public static var arrayType: PostgresDataType { .timestamptzArray }
    /// Microseconds since 2000-01-01 UTC, computed as postgres-nio's own `Date` encoding
    /// does, so a value matches itself bound either way.
    public func writeElement(to buffer: inout ByteBuffer) {
        buffer.writeInteger(Int32(8))
        buffer.writeInteger(Int64(timeIntervalSince(Self.postgresEpoch) * 1_000_000))
    }

    static let postgresEpoch = Date(timeIntervalSince1970: 946_684_800)
}
