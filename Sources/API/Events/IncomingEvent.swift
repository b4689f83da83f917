import Core
import Foundation

/// One event as posted, parsed leniently: a field of the wrong type is recorded as
/// this event's problem, not a failure of the whole batch.
struct IncomingEvent: Sendable {
    let fields: [String: JSONValue]

    init(fields: [String: JSONValue]) {
        self.fields = fields
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
    static let knownFields: Set<String> = ["name", "properties", "user_id", "session_id", "timestamp", "id"]

    /// - Parameter generatedID: the id the event gets when the client sent none.
    static func validate(
        _ event: IncomingEvent, now: Date, retentionDays: Int, generatedID: UUID
    ) -> Result<ValidEvent, EventProblem> {
        let fields = event.fields
        if fields["__not_an_object"] != nil {
            return .failure(.init(code: "invalid_event", message: "an event must be a JSON object"))
        }
        if let unknown = fields.keys.first(where: { !knownFields.contains($0) }) {
            return .failure(.init(code: "unknown_field", message: "unknown field '\(unknown)'; custom data goes in 'properties'"))
        }
        guard case .string(let name)? = fields["name"] else {
            return .failure(.init(code: "invalid_name", message: fields["name"] == nil ? "'name' is required" : "'name' must be a string"))
        }
        guard (1...255).contains(name.count) else {
            return .failure(.init(code: "invalid_name", message: "'name' must be 1 to 255 characters"))
        }
        guard !name.utf8.contains(0) else {
            return .failure(.init(code: "invalid_name", message: "'name' must not contain NUL characters"))
        }
        var properties = "{}"
        switch fields["properties"] {
        case nil, .null?: break
        case .object(let object)?:
            let value = JSONValue.object(object)
            guard value.depth <= maximumPropertiesDepth + 1 else {
                return .failure(.init(code: "invalid_properties", message: "'properties' nests deeper than \(maximumPropertiesDepth) levels"))
            }
            guard !value.containsNUL else {
                return .failure(.init(code: "invalid_properties", message: "'properties' must not contain NUL characters"))
            }
            properties = value.jsonText
            guard properties.utf8.count <= maximumPropertiesBytes else {
                return .failure(.init(code: "invalid_properties", message: "'properties' exceeds 32 KiB serialized"))
            }
        case let other?:
            return .failure(.init(code: "invalid_properties", message: "'properties' must be an object, not \(other.typeName)"))
        }
        var optionalStrings: [String: String] = [:]
        for field in ["user_id", "session_id"] {
            switch fields[field] {
            case nil, .null?: break
            case .string(let value)?:
                guard value.count <= 255, !value.utf8.contains(0) else {
                    return .failure(.init(code: "invalid_\(field)", message: "'\(field)' must be at most 255 characters, without NUL"))
                }
                optionalStrings[field] = value
            case .number(let value)? where value == value.rounded() && abs(value) < 1e15:
                optionalStrings[field] = String(Int64(value))  // numeric user ids are common
            case let other?:
                return .failure(.init(code: "invalid_\(field)", message: "'\(field)' must be a string, not \(other.typeName)"))
            }
        }
        var timestamp = now
        switch fields["timestamp"] {
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
        switch fields["id"] {
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
                userID: optionalStrings["user_id"], sessionID: optionalStrings["session_id"], timestamp: timestamp))
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
