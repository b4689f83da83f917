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
}
