/// Events read straight from a request body's bytes.
///
/// A batch used to become a tree of dictionaries (`JSONValue`) whose properties were then
/// written back out as text for PostgreSQL: the larger part of the server's CPU per event.
/// Now an event's fields are read in one pass, and its properties object is checked in
/// place and passed on as the client's own text (PostgreSQL parses jsonb from text either
/// way). The grammar is `JSONParser`'s, so what is accepted as JSON is unchanged.
extension JSONParser {
    /// `{"events": [...]}`'s events; nil when the body has no `events` array.
    static func eventBatch(_ bytes: UnsafeBufferPointer<UInt8>) throws -> [IncomingEvent]? {
        var parser = JSONParser(bytes: bytes, maximumDepth: 64)
        parser.skipWhitespace()
        var events: [IncomingEvent]?
        if parser.index < bytes.count, bytes[parser.index] == UInt8(ascii: "{") {
            try parser.forEachMember { parser, key in
                guard key == "events", parser.bytes[parser.index] == UInt8(ascii: "[") else {
                    if key == "events" { events = nil }
                    _ = try parser.value(depth: 1)
                    return
                }
                events = try parser.eventArray()
            }
        } else {
            _ = try parser.value(depth: 0)
        }
        try parser.end()
        return events
    }

    /// A body holding one event.
    static func event(_ bytes: UnsafeBufferPointer<UInt8>) throws -> IncomingEvent {
        var parser = JSONParser(bytes: bytes, maximumDepth: 64)
        parser.skipWhitespace()
        let event = try parser.incomingEvent(depth: 0)
        try parser.end()
        return event
    }

    mutating func end() throws {
        skipWhitespace()
        guard index == bytes.count else { throw Failure() }
    }

    private mutating func eventArray() throws -> [IncomingEvent] {
        index += 1
        var events: [IncomingEvent] = []
        skipWhitespace()
        if index < bytes.count, bytes[index] == UInt8(ascii: "]") {
            index += 1
            return events
        }
        while true {
            skipWhitespace()
            events.append(try incomingEvent(depth: 2))
            skipWhitespace()
            guard index < bytes.count else { throw Failure() }
            if bytes[index] == UInt8(ascii: ",") { index += 1; continue }
            if bytes[index] == UInt8(ascii: "]") { index += 1; return events }
            throw Failure()
        }
    }

    /// One event object; any other value is read and reported as not an object.
    private mutating func incomingEvent(depth: Int) throws -> IncomingEvent {
        var event = IncomingEvent()
        guard index < bytes.count, bytes[index] == UInt8(ascii: "{") else {
            _ = try value(depth: depth)
            event.isObject = false
            return event
        }
        try forEachMember { parser, key in
            switch key {
            case "name": event.name = try parser.value(depth: depth + 1)
            case "user_id": event.userID = try parser.value(depth: depth + 1)
            case "session_id": event.sessionID = try parser.value(depth: depth + 1)
            case "timestamp": event.timestamp = try parser.value(depth: depth + 1)
            case "id": event.id = try parser.value(depth: depth + 1)
            case "properties":
                guard parser.bytes[parser.index] == UInt8(ascii: "{") else {
                    event.properties = .other(try parser.value(depth: depth + 1))
                    return
                }
                let start = parser.index
                var shape = RawJSONShape()
                let nesting = try parser.check(depth: depth + 1, &shape)
                let span = UnsafeBufferPointer(rebasing: parser.bytes[start..<parser.index])
                event.properties = .object(
                    RawJSONObject(
                        text: String(decoding: span, as: UTF8.self), depth: nesting, containsNUL: shape.containsNUL,
                        numbersFit: shape.numbersFit))
            default:
                if event.unknownField == nil { event.unknownField = key }
                _ = try parser.value(depth: depth + 1)
            }
        }
        return event
    }

    /// Reads a value without building it, recording what PostgreSQL's jsonb would refuse
    /// or blow up. - Returns: its nesting depth, 1 for a scalar (as `JSONValue.depth`).
    mutating func check(depth: Int, _ shape: inout RawJSONShape) throws -> Int {
        guard depth <= maximumDepth else { throw Failure() }
        skipWhitespace()
        guard index < bytes.count else { throw Failure() }
        let opening = bytes[index]
        switch opening {
        case UInt8(ascii: "{"), UInt8(ascii: "["):
            let closing = opening == UInt8(ascii: "{") ? UInt8(ascii: "}") : UInt8(ascii: "]")
            index += 1
            skipWhitespace()
            if index < bytes.count, bytes[index] == closing {
                index += 1
                return 1
            }
            var deepest = 0
            while true {
                skipWhitespace()
                if opening == UInt8(ascii: "{") {
                    guard index < bytes.count, bytes[index] == UInt8(ascii: "\"") else { throw Failure() }
                    try checkString(&shape)
                    skipWhitespace()
                    guard index < bytes.count, bytes[index] == UInt8(ascii: ":") else { throw Failure() }
                    index += 1
                }
                deepest = max(deepest, try check(depth: depth + 1, &shape))
                skipWhitespace()
                guard index < bytes.count else { throw Failure() }
                if bytes[index] == UInt8(ascii: ",") { index += 1; continue }
                if bytes[index] == closing { index += 1; return 1 + deepest }
                throw Failure()
            }
        case UInt8(ascii: "\""): try checkString(&shape)
        case UInt8(ascii: "t"): try literal("true")
        case UInt8(ascii: "f"): try literal("false")
        case UInt8(ascii: "n"): try literal("null")
        default:
            let span = try numberSpan()
            if !Self.numberFits(UnsafeBufferPointer(rebasing: bytes[span])) { shape.numbersFit = false }
        }
        return 1
    }

    /// A string starting at its opening quote, checked as `string()` reads it.
    private mutating func checkString(_ shape: inout RawJSONShape) throws {
        index += 1
        while index < bytes.count {
            let byte = bytes[index]
            if byte == UInt8(ascii: "\"") {
                index += 1
                return
            }
            guard byte >= 0x20 else { throw Failure() }
            if byte == UInt8(ascii: "\\") {
                if case .scalar("\u{0}") = try escape() { shape.containsNUL = true }
            } else {
                index += 1
            }
        }
        throw Failure()
    }

    /// Whether PostgreSQL stores the number at about its written size: its `numeric`
    /// keeps every digit of 1e100000 (or fails past 1e131071), so a few bytes of JSON
    /// could become kilobytes on disk or fail a whole group of requests.
    static func numberFits(_ text: UnsafeBufferPointer<UInt8>) -> Bool {
        guard text.count <= maximumNumberDigits else { return false }
        guard let e = text.firstIndex(where: { $0 == UInt8(ascii: "e") || $0 == UInt8(ascii: "E") }) else { return true }
        var exponent = 0
        for byte in text[(e + 1)...] where byte >= 0x30 && byte <= 0x39 {
            exponent = exponent * 10 + Int(byte - 0x30)
            if exponent > maximumNumberExponent { return false }
        }
        return true
    }

    static let maximumNumberDigits = 400
    static let maximumNumberExponent = 400

    /// Bytes of the JSON text without whitespace between tokens.
    static func compactCount(_ text: UnsafeBufferPointer<UInt8>) -> Int {
        var count = 0, inString = false, escaped = false
        for byte in text {
            if inString {
                count += 1
                if escaped { escaped = false } else if byte == UInt8(ascii: "\\") { escaped = true } else if byte == UInt8(ascii: "\"") { inString = false }
            } else if byte != 0x20, byte != 0x0A, byte != 0x0D, byte != 0x09 {
                count += 1
                if byte == UInt8(ascii: "\"") { inString = true }
            }
        }
        return count
    }
}

/// What checking a raw JSON value found.
struct RawJSONShape {
    var containsNUL = false
    var numbersFit = true
}

/// A properties object as the client wrote it.
struct RawJSONObject: Sendable {
    let text: String
    let depth: Int
    let containsNUL: Bool
    let numbersFit: Bool

    /// Bytes without whitespace between tokens; only worth counting when the text as
    /// sent is over a limit.
    var compactBytes: Int {
        var text = text
        return text.withUTF8 { JSONParser.compactCount($0) }
    }
}
