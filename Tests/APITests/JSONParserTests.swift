@testable import API
import Testing

@Suite struct JSONParserTests {
    func parse(_ text: String) throws -> JSONValue {
        try Array(text.utf8).withUnsafeBufferPointer { try JSONParser.parse($0) }
    }

    @Test func parsesEveryKind() throws {
        let value = try parse(#" {"a": [1, -2.5e3, true, false, null], "s": "x\"\\\/\n\u00e9\ud83d\ude00", "o": {}} "#)
        #expect(value == .object([
            "a": .array([.number(1), .number(-2500), .bool(true), .bool(false), .null]),
            "s": .string("x\"\\/\né😀"), "o": .object([:]),
        ]))
        #expect(try parse("\"Привет 日本\"") == .string("Привет 日本"))
    }

    @Test(arguments: [
        "", "{", "[1,]", "{\"a\":}", "{\"a\" 1}", "01", "1.", "-", "1e", "tru", "nul", "\"abc", "\"\\x\"", "\"\\ud83d\"",
        "\"tab\there\"", "[1] 2", "{'a': 1}", "NaN",
    ])
    func rejectsMalformed(text: String) {
        #expect(throws: JSONParser.Failure.self) { try parse(text) }
    }

    @Test func limitsDepth() throws {
        let deep = String(repeating: "[", count: 100) + String(repeating: "]", count: 100)
        #expect(throws: JSONParser.Failure.self) { try parse(deep) }
        #expect(try parse(String(repeating: "[", count: 10) + String(repeating: "]", count: 10)).depth == 10)
    }

    // MARK: events read straight from the body

    func events(_ text: String) throws -> [IncomingEvent]? {
        try Array(text.utf8).withUnsafeBufferPointer { try JSONParser.eventBatch($0) }
    }

    func rawProperties(_ properties: String) throws -> RawJSONObject? {
        let event = try Array(#"{"name": "e", "properties": \#(properties)}"#.utf8).withUnsafeBufferPointer {
            try JSONParser.event($0)
        }
        guard case .object(let object)? = event.properties else { return nil }
        return object
    }

    /// The event reader accepts exactly what the tree parser accepts, wherever the value sits.
    @Test(arguments: [
        "{", "[1,]", "{\"a\":}", "{\"a\" 1}", "01", "1.", "-", "1e", "tru", "nul", "\"abc", "\"\\x\"", "\"\\ud83d\"",
        "\"\\udc00\"", "\"tab\there\"", "{'a': 1}", "NaN", "[1 2]",
    ])
    func eventReaderRejectsWhatTheParserRejects(text: String) {
        #expect(throws: JSONParser.Failure.self) { try parse(text) }
        for body in [
            #"{"events": [{"name": "e", "properties": {"k": \#(text)}}]}"#,
            #"{"events": [{"name": \#(text)}]}"#,
            #"{"events": [\#(text)]}"#,
            #"{"other": \#(text), "events": []}"#,
        ] {
            #expect(throws: JSONParser.Failure.self) { try events(body) }
        }
    }

    @Test func readsEventsInOrderWithTheirFields() throws {
        let read = try #require(try events(#"""
            {"sent_at": [1, {"x": null}], "events": [
              {"name": "a", "user_id": 7, "properties": {"p": [1, {"q": "\u00e9"}]}, "id": "x", "timestamp": "t"},
              [1, 2],
              {"name": "b", "name": "c", "colour": "red", "session_id": null},
              {"properties": "text"}
            ]}
            """#))
        #expect(read.count == 4)
        #expect(read[0].name == .string("a") && read[0].userID == .number(7) && read[0].id == .string("x"))
        #expect(read[0].timestamp == .string("t") && read[0].unknownField == nil)
        guard case .object(let properties)? = read[0].properties else { Issue.record("no properties"); return }
        #expect(properties.text == #"{"p": [1, {"q": "\u00e9"}]}"#)
        #expect(read[1].isObject == false)
        #expect(read[2].name == .string("c"))  // the last of a repeated key, as in a dictionary
        #expect(read[2].unknownField == "colour" && read[2].sessionID == .null)
        guard case .other(.string("text"))? = read[3].properties else { Issue.record("properties: \(String(describing: read[3].properties))"); return }
        #expect(try events(#"{"events": {"name": "a"}}"#) == nil)
        #expect(try events(#"{"items": []}"#) == nil)
        #expect(try events(#"[{"name": "a"}]"#) == nil)
        #expect(try events(#"{"events": []}"#)?.isEmpty == true)
    }

    /// Depth as `JSONValue.depth`, NUL, oversized numbers and the compact size, read without a tree.
    @Test(arguments: [
        #"{}"#, #"{"a": 1}"#, #"{"a": {"b": [1, [2, {"c": {}}]]}, "d": []}"#, #"{"a": [[[[["deep"]]]]], "b": "x"}"#,
        " { \"a\" :\t[ 1 , 2 ]\n, \"s p\": \"x y\" } ",
    ])
    func rawPropertiesMatchTheTree(text: String) throws {
        let raw = try #require(try rawProperties(text))
        let tree = try parse(text)
        #expect(raw.depth == tree.depth)
        #expect(raw.text == text.trimmingCharacters(in: .whitespaces))
        #expect(raw.compactBytes == tree.jsonText.utf8.count)
        #expect(!raw.containsNUL && raw.numbersFit)
    }

    @Test func rawPropertiesFlagWhatJsonbRefusesOrBloats() throws {
        #expect(try rawProperties(#"{"a": "x\u0000y"}"#)?.containsNUL == true)
        #expect(try rawProperties(#"{"\u0000": 1}"#)?.containsNUL == true)
        #expect(try rawProperties(#"{"a": "\\u0000"}"#)?.containsNUL == false)  // an escaped backslash, then text
        #expect(try rawProperties(#"{"a": 1e400}"#)?.numbersFit == true)
        #expect(try rawProperties(#"{"a": [1E-401]}"#)?.numbersFit == false)
        #expect(try rawProperties(#"{"a": 2e131072}"#)?.numbersFit == false)
        #expect(try rawProperties("{\"a\": \(String(repeating: "9", count: 401))}")?.numbersFit == false)
        #expect(try rawProperties(#"{"a": 12345678901234567890.125}"#)?.numbersFit == true)
    }
}

