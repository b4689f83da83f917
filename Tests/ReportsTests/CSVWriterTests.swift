@testable import Reports
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
