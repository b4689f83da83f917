import Core
import Foundation
import Hummingbird
import NIOCore

/// Reading and writing JSON bodies with DESIGN §7's errors.
enum JSONBody {
    /// The body, after checking its content type and size; 415 / 413 otherwise.
    static func read(_ request: Request, limit: Int) async throws -> ByteBuffer {
        if let type = request.headers[.contentType], !type.lowercased().hasPrefix("application/json") {
            throw AppError(.unsupportedMediaType, "Content-Type must be application/json")
        }
        do {
            return try await request.body.collect(upTo: limit)
        } catch let error as HTTPError where error.status == .contentTooLarge {
            throw AppError(.payloadTooLarge, "request body exceeds \(limit / 1024) KiB")
        } catch is NIOTooManyBytesError {
            throw AppError(.payloadTooLarge, "request body exceeds \(limit / 1024) KiB")
        }
    }

    /// Parses any JSON value; malformed JSON or non-UTF-8 bytes are a 400.
    static func parse(_ buffer: ByteBuffer) throws -> JSONValue {
        try parse(buffer) { try JSONParser.parse($0) }
    }

    /// Runs a parser over the body's bytes; malformed JSON or non-UTF-8 bytes are a 400.
    static func parse<Value>(_ buffer: ByteBuffer, with parser: (UnsafeBufferPointer<UInt8>) throws -> Value) throws -> Value {
        guard String(validating: buffer.readableBytesView, as: UTF8.self) != nil else {
            throw AppError(.invalidJSON, "request body is not valid UTF-8")
        }
        do {
            return try buffer.readableBytesView.withContiguousStorageIfAvailable(parser)
                ?? Array(buffer.readableBytesView).withUnsafeBufferPointer(parser)
        } catch {
            throw AppError(.invalidJSON, "request body is not valid JSON")
        }
    }

    /// A response from JSON text built by hand, for the hottest paths where
    /// `JSONEncoder`'s reflection costs more than the request's own work.
    static func response(jsonText: String, status: HTTPResponse.Status = .ok) -> Response {
        Response(
            status: status, headers: [.contentType: "application/json"], body: .init(byteBuffer: ByteBuffer(string: jsonText)))
    }

    static func response(jsonBytes: [UInt8], status: HTTPResponse.Status = .ok) -> Response {
        Response(
            status: status, headers: [.contentType: "application/json"], body: .init(byteBuffer: ByteBuffer(bytes: jsonBytes)))
    }

    static func response<T: Encodable>(_ value: T, status: HTTPResponse.Status = .ok) throws -> Response {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        encoder.dateEncodingStrategy = .custom { date, encoder in
            var container = encoder.singleValueContainer()
            try container.encode(Timestamps.format(date))
        }
        let data = try encoder.encode(value)
        return Response(
            status: status, headers: [.contentType: "application/json"], body: .init(byteBuffer: ByteBuffer(bytes: data)))
    }
}
