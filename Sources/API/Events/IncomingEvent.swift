import Core
import Foundation

/// One event as posted, read leniently: a field of the wrong type is recorded as this
/// event's problem, not a failure of the whole batch.
struct IncomingEvent: Sendable {
    var isObject = true
    /// The first field that is not an event field.
    var unknownField: String?
    var name: JSONValue?
    var properties: Properties?
    var userID: JSONValue?
    var sessionID: JSONValue?
    var timestamp: JSONValue?
    var id: JSONValue?

    enum Properties: Sendable {
        case object(RawJSONObject)
        /// Anything but an object (null means none).
        case other(JSONValue)
    }
}

/// An event that passed validation, ready to store.
struct ValidEvent: Sendable {
    let id: UUID
    /// The client sent the id: a retry with it must be stored once.
    let clientSuppliedID: Bool
    let name: String
    let properties: String
    let userID: String?
    let sessionID: String?
    let timestamp: Date
}

/// Why one event was refused.
struct EventProblem: Error, Sendable {
    let code: String
    let message: String
}

enum EventValidator {
    static let maximumPropertiesBytes = 32 * 1024
    static let maximumPropertiesDepth = 8
    static let maximumFuture: TimeInterval = 3600

    /// - Parameter generatedID: the id the event gets when the client sent none.
    static func validate(
        _ event: IncomingEvent, now: Date, retentionDays: Int, generatedID: UUID
    ) -> Result<ValidEvent, EventProblem> {
        guard event.isObject else {
            return .failure(.init(code: "invalid_event", message: "an event must be a JSON object"))
        }
        if let unknown = event.unknownField {
            return .failure(.init(code: "unknown_field", message: "unknown field '\(unknown)'; custom data goes in 'properties'"))
        }
        guard case .string(let name)? = event.name else {
            return .failure(.init(code: "invalid_name", message: event.name == nil ? "'name' is required" : "'name' must be a string"))
        }
        guard (1...255).contains(name.count) else {
            return .failure(.init(code: "invalid_name", message: "'name' must be 1 to 255 characters"))
        }
        guard !name.utf8.contains(0) else {
            return .failure(.init(code: "invalid_name", message: "'name' must not contain NUL characters"))
        }
        var properties = "{}"
        switch event.properties {
        case nil, .other(.null)?: break
        case .object(let object)?:
            guard object.depth <= maximumPropertiesDepth + 1 else {
                return .failure(.init(code: "invalid_properties", message: "'properties' nests deeper than \(maximumPropertiesDepth) levels"))
            }
            guard !object.containsNUL else {
                return .failure(.init(code: "invalid_properties", message: "'properties' must not contain NUL characters"))
            }
            guard object.numbersFit else {
                return .failure(
                    .init(
                        code: "invalid_properties",
                        message: "numbers in 'properties' must have at most \(JSONParser.maximumNumberDigits) characters and an exponent within ±\(JSONParser.maximumNumberExponent)"))
            }
            guard object.text.utf8.count <= maximumPropertiesBytes || object.compactBytes <= maximumPropertiesBytes else {
                return .failure(.init(code: "invalid_properties", message: "'properties' exceeds 32 KiB serialized"))
            }
            properties = object.text
        case .other(let other)?:
            return .failure(.init(code: "invalid_properties", message: "'properties' must be an object, not \(other.typeName)"))
        }
        let userID: String?, sessionID: String?
        switch optionalString(event.userID, field: "user_id") {
        case .success(let value): userID = value
        case .failure(let problem): return .failure(problem)
        }
        switch optionalString(event.sessionID, field: "session_id") {
        case .success(let value): sessionID = value
        case .failure(let problem): return .failure(problem)
        }
        var timestamp = now
        switch event.timestamp {
        case nil, .null?: break
        case .string(let text)?:
            guard let parsed = Timestamps.parse(text) else {
                return .failure(.init(code: "invalid_timestamp", message: "'timestamp' must be ISO 8601 with an offset, e.g. 2026-11-25T10:00:00Z"))
            }
            guard parsed.timeIntervalSince(now) <= maximumFuture else {
                return .failure(.init(code: "invalid_timestamp", message: "'timestamp' is more than 1 hour in the future"))
            }
            guard parsed >= now.addingTimeInterval(-Double(retentionDays) * 86_400) else {
                return .failure(.init(code: "invalid_timestamp", message: "'timestamp' is older than the organization's retention of \(retentionDays) days"))
            }
            timestamp = parsed
        case let other?:
            return .failure(.init(code: "invalid_timestamp", message: "'timestamp' must be a string, not \(other.typeName)"))
        }
        var id = generatedID
        var clientID = false
        switch event.id {
        case nil, .null?: break
        case .string(let text)?:
            guard let parsed = UUID(uuidString: text) else {
                return .failure(.init(code: "invalid_id", message: "'id' must be a UUID"))
            }
            id = parsed
            clientID = true
        case let other?:
            return .failure(.init(code: "invalid_id", message: "'id' must be a UUID string, not \(other.typeName)"))
        }
        return .success(
            ValidEvent(
                id: id, clientSuppliedID: clientID, name: name, properties: properties,
                userID: userID, sessionID: sessionID, timestamp: timestamp))
    }

    /// `user_id` and `session_id`: a string, or a whole number (numeric user ids are common).
    static func optionalString(_ value: JSONValue?, field: String) -> Result<String?, EventProblem> {
        switch value {
        case nil, .null?: return .success(nil)
        case .string(let value)?:
            guard value.count <= 255, !value.utf8.contains(0) else {
                return .failure(.init(code: "invalid_\(field)", message: "'\(field)' must be at most 255 characters, without NUL"))
            }
            return .success(value)
        case .number(let value)? where value == value.rounded() && abs(value) < 1e15:
            return .success(String(Int64(value)))
        case let other?:
            return .failure(.init(code: "invalid_\(field)", message: "'\(field)' must be a string, not \(other.typeName)"))
        }
    }
}

enum Timestamps {
    // ISO8601DateFormatter is thread-safe once configured; making one per call is slow.
    nonisolated(unsafe) static let fractional: ISO8601DateFormatter = {
        let formatter = ISO8601DateFormatter()
        formatter.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
        return formatter
    }()
    nonisolated(unsafe) static let whole: ISO8601DateFormatter = {
        let formatter = ISO8601DateFormatter()
        formatter.formatOptions = [.withInternetDateTime]
        return formatter
    }()

    static func parse(_ text: String) -> Date? {
        fractional.date(from: text) ?? whole.date(from: text)
    }

    static func format(_ date: Date) -> String {
        fractional.string(from: date)
    }
}
