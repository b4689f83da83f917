import ArgumentParser
import Foundation
import Reports
import Scheduler

extension BenchCommand {
    struct Report: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Reports: PDF render time of a 10-page / 20-chart / 500-row report; CSV rows per second.")

        @Option(help: "Renders to time (the first, warming fonts, is not counted).") var renders: Int = 20
        @Option(name: .customLong("csv-rows"), help: "Rows written for the CSV figure.") var csvRows: Int = 2_000_000

        func run() throws {
            guard renders > 0, csvRows > 0 else { throw CLIFailure.usage("counts must be positive") }
            let document = SampleReport.document()
            var pages = 0
            var bytes = 0
            _ = try PDFRenderer.render(document)
            var times: [Double] = []
            for _ in 0..<renders {
                let started = ContinuousClock.now
                let pdf = try PDFRenderer.render(document)
                times.append((ContinuousClock.now - started).seconds * 1000)
                bytes = pdf.bytes.count
                pages = pdf.pageCount
            }
            times.sort()
            print("report_pages=\(pages)")
            print("report_bytes=\(bytes)")
            print(String(format: "report_10_pages_ms=%.1f", times[times.count / 2]))
            print(String(format: "report_10_pages_p99_ms=%.1f", times[min(times.count - 1, times.count * 99 / 100)]))

            // Event-shaped rows written to /dev/null through the same writer exports use.
            let descriptor = open("/dev/null", O_WRONLY)
            defer { close(descriptor) }
            var writer = CSVWriter(sink: FileDescriptorSink(descriptor: descriptor), byteOrderMark: true)
            writer.writeRow(["id", "name", "timestamp", "user_id", "properties"])
            let started = ContinuousClock.now
            for row in 0..<csvRows {
                writer.writeRow([
                    "0193f0a2-7c1e-7000-8000-\(String(row, radix: 16))", row % 7 == 0 ? "=cmd" : "page_view",
                    "2026-11-20T10:00:00.\(row % 1000)Z", "user-\(row % 5000)", #"{"plan":"pro","amount":-12.5}"#,
                ])
            }
            var sink = writer.sink
            sink.flush()
            let seconds = (ContinuousClock.now - started).seconds
            print("csv_rows_per_s=\(Int(Double(csvRows) / seconds))")
            print(String(format: "csv_mb_per_s=%.1f", Double(sink.bytesWritten) / seconds / 1e6))
        }
    }
}
