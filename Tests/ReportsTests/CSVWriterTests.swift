import Foundation
@testable import Reports
import TestSupport
import Testing

@Suite struct CSVWriterTests {
    func csv(_ rows: [[String]], bom: Bool = false) -> String {
        var writer = CSVWriter(sink: CSVBuffer(), byteOrderMark: bom)
        for row in rows { writer.writeRow(row) }
        return writer.sink.text
    }

    @Test func quotesPerRFC4180() {
        #expect(csv([["a", "b,c", "say \"hi\"", "line\nbreak", ""]]) == "a,\"b,c\",\"say \"\"hi\"\"\",\"line\nbreak\",\r\n")
        #expect(csv([["é", "Ωμέγα", "Привет", "日本"]]) == "é,Ωμέγα,Привет,日本\r\n")
    }

    @Test(arguments: [
        ("=SUM(A1:A9)", "'=SUM(A1:A9)"), ("+cmd|' /C calc'!A0", "'+cmd|' /C calc'!A0"), ("-2+3", "'-2+3"),
        ("@SUM(1)", "'@SUM(1)"), ("\tx", "'\tx"), ("\rx", "'\rx"), ("-", "'-"), ("-e5", "'-e5"),
        ("-12.5", "-12.5"), ("+3", "+3"), ("-1e-3", "-1e-3"), ("-0.5E+10", "-0.5E+10"), ("42", "42"), ("a=b", "a=b"),
    ])
    func neutralisesFormulasButNotNumbers(input: String, expected: String) {
        #expect(CSVWriter<CSVBuffer>.neutralised(input) == expected)
    }

    @Test func byteOrderMarkForExcel() {
        let text = csv([["x"]], bom: true)
        #expect(Array(text.utf8.prefix(3)) == [0xEF, 0xBB, 0xBF])
    }

    /// Streaming: a sink that keeps only a count sees every row, and the writer holds none.
    @Test func streamsWithoutKeepingRows() {
        struct Counting: CSVSink {
            var bytes = 0
            mutating func write(_ bytes: [UInt8]) { self.bytes += bytes.count }
        }
        var writer = CSVWriter(sink: Counting())
        for i in 0..<100_000 { writer.writeRow(["\(i)", "event", "-\(i).5"]) }
        #expect(writer.rowsWritten == 100_000)
        #expect(writer.sink.bytes > 2_000_000)
    }
}

/// Python's csv module reads back exactly what was written.
@Suite struct CSVRoundTripTests {
    @Test func pythonReadsBackEveryCell() async throws {
        let rows = [
            ["id", "name", "note", "amount"],
            ["1", "comma, inside", "quote \"here\"", "-12.5"],
            ["2", "line\nbreak", "Ωμέγα Привет 日本", "+3"],
            ["3", "", "trailing space ", "1e5"],
        ]
        var writer = CSVWriter(sink: CSVBuffer(), byteOrderMark: true)
        for row in rows { writer.writeRow(row) }
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("roundtrip-\(getpid()).csv").path
        #expect(FileManager.default.createFile(atPath: path, contents: Data(writer.sink.bytes)))
        let script = "import csv,json,sys; print(json.dumps(list(csv.reader(open(sys.argv[1], newline='', encoding='utf-8-sig')))))"
        let (status, stdout, stderr) = try await ChildProcess.run("/usr/bin/env", ["python3", "-c", script, path])
        #expect(status == 0, "\(stderr)")
        let parsed = try JSONSerialization.jsonObject(with: Data(stdout.utf8)) as? [[String]]
        #expect(parsed == rows)
    }
}
