/// An error meant for the caller: a stable code plus a message that is safe to show.
///
/// Internal errors (database, I/O) never become an `AppError` with their details; the
/// HTTP edge maps anything else to a generic 500 and logs the detail instead.
public struct AppError: Error, CustomStringConvertible, Sendable {
    /// Extensible set of codes; each knows its HTTP status.
    public struct Code: Hashable, Sendable, CustomStringConvertible {
        public let rawValue: String
        public let httpStatus: Int

        public init(_ rawValue: String, status: Int) {
            self.rawValue = rawValue
            self.httpStatus = status
        }

        public var description: String { rawValue }

        public static let badRequest = Code("bad_request", status: 400)
        public static let invalidJSON = Code("invalid_json", status: 400)
        public static let unauthorized = Code("unauthorized", status: 401)
        public static let forbidden = Code("forbidden", status: 403)
        public static let notFound = Code("not_found", status: 404)
        public static let methodNotAllowed = Code("method_not_allowed", status: 405)
        public static let conflict = Code("conflict", status: 409)
        public static let gone = Code("gone", status: 410)
        public static let payloadTooLarge = Code("payload_too_large", status: 413)
        public static let unsupportedMediaType = Code("unsupported_media_type", status: 415)
        public static let invalidField = Code("invalid_field", status: 422)
        public static let rateLimited = Code("rate_limited", status: 429)
        public static let quotaExceeded = Code("quota_exceeded", status: 429)
        public static let unavailable = Code("unavailable", status: 503)
        public static let internalError = Code("internal_error", status: 500)
    }

    public let code: Code
    public let message: String

    public init(_ code: Code, _ message: String) {
        self.code = code
        self.message = message
    }

    public var description: String { "\(code.rawValue): \(message)" }
}
