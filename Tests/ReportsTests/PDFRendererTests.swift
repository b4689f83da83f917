import Foundation
@testable import Reports
import TestSupport
import Testing

/// PDFs are checked with real tools (qpdf, poppler-utils), not by reading our own bytes.
@Suite struct PDFRendererTests {
    static let folder = FileManager.default.temporaryDirectory.appendingPathComponent("analyticspro-pdf-\(getpid())").path

    func write(_ rendered: PDFRenderer.Rendered, _ name: String) throws -> String {
        try FileManager.default.createDirectory(atPath: Self.folder, withIntermediateDirectories: true)
        let path = Self.folder + "/" + name + ".pdf"
        #expect(FileManager.default.createFile(atPath: path, contents: Data(rendered.bytes)))
        return path
    }

    func tool(_ name: String, _ arguments: [String]) async throws -> String {
        let (status, stdout, stderr) = try await ChildProcess.run("/usr/bin/" + name, arguments)
        #expect(status == 0, "\(name) \(arguments): \(stderr)")
        return stdout
    }

    func text(_ path: String) async throws -> String {
        try await tool("pdftotext", ["-layout", path, "-"])
    }

    @Test func sampleReportPassesTheToolsAndShowsItsData() async throws {
        let rendered = try PDFRenderer.render(SampleReport.document())
        let path = try write(rendered, "sample")
        let check = try await tool("qpdf", ["--check", path])
        #expect(check.contains("No syntax or stream encoding errors"))

        let info = try await tool("pdfinfo", [path])
        #expect(info.contains("Pages:") && info.contains(" \(rendered.pageCount)\n"))
        #expect(rendered.pageCount >= 10)

        let text = try await text(path)
        #expect(text.contains("Acme Analytics"))
        #expect(text.contains("12.35M"))  // KPI value
        #expect(text.contains("€48.2K"))
        #expect(text.contains("/docs/section-49/page-499"))  // the last table row
        #expect(text.contains("Page \(rendered.pageCount) of \(rendered.pageCount)"))
        // The table header is repeated on every page the table spans.
        let headerCount = text.components(separatedBy: "Unique visitors").count - 1
        #expect(headerCount >= 9)

        let fonts = try await tool("pdffonts", [path])
        let fontRows = fonts.split(separator: "\n").dropFirst(2)
        #expect(!fontRows.isEmpty)
        #expect(fontRows.allSatisfy { $0.contains(" yes yes ") })  // embedded, subset

        // The first page's chart area is drawn: count non-white pixels in a grayscale render.
        let base = Self.folder + "/sample-page"
        _ = try await tool("pdftoppm", ["-r", "40", "-f", "1", "-l", "1", "-gray", path, base])
        let image = try #require(FileManager.default.contents(atPath: base + "-01.pgm") ?? FileManager.default.contents(atPath: base + "-1.pgm"))
        let pixels = Self.pgmPixels(image)
        let lowerHalf = pixels.suffix(pixels.count / 2)
        let inked = lowerHalf.filter { $0 < 200 }.count
        #expect(Double(inked) / Double(lowerHalf.count) > 0.02)
    }

    /// P5 (binary PGM): header, then one byte per pixel.
    static func pgmPixels(_ data: Data) -> [UInt8] {
        let bytes = [UInt8](data)
        var fields = 0, index = 0
        while fields < 4, index < bytes.count {
            while index < bytes.count, bytes[index] == UInt8(ascii: " ") || bytes[index] == UInt8(ascii: "\n") { index += 1 }
            while index < bytes.count, bytes[index] != UInt8(ascii: " "), bytes[index] != UInt8(ascii: "\n") { index += 1 }
            fields += 1
        }
        return Array(bytes[min(index + 1, bytes.count)...])
    }

    @Test func sameDocumentSameBytes() throws {
        let first = try PDFRenderer.render(SampleReport.document(charts: 4, rows: 80))
        let second = try PDFRenderer.render(SampleReport.document(charts: 4, rows: 80))
        #expect(first.bytes == second.bytes)
    }

    @Test func accentedGreekAndCyrillicRender() async throws {
        let document = ReportDocument(
            title: "Überblick — Café", generatedAt: Date(timeIntervalSince1970: 1_795_000_000),
            blocks: [
                .paragraph("Ελληνικά γράμματα · Кириллица работает · Crème brûlée, Łódź, Ærøskøbing"),
                .table(TableBlock(columns: ["Stadt", "Ereignisse"], rows: [["Αθήνα", "12"], ["Москва", "-3.5"]])),
            ])
        let path = try write(try PDFRenderer.render(document), "scripts")
        let text = try await text(path)
        for word in ["Überblick", "Café", "Ελληνικά", "Кириллица", "Crème", "Łódź", "Αθήνα", "Москва", "-3.5"] {
            #expect(text.contains(word), "missing \(word)")
        }
    }

    @Test func cjkRendersWhenAFontIsInstalled() async throws {
        let (_, fonts, _) = try await ChildProcess.run("/usr/bin/fc-list", [":lang=zh", "family"])
        guard !fonts.trimmingCharacters(in: .whitespacesAndNewlines).isEmpty else {
            // No CJK font on this machine (the Makefile does not install one: 50+ MB).
            return
        }
        let document = ReportDocument(title: "报告", generatedAt: Date(), blocks: [.paragraph("日本語のテキスト 中文报告")])
        let text = try await text(try write(try PDFRenderer.render(document), "cjk"))
        #expect(text.contains("中文报告"))
    }

    @Test func hostileValuesRenderSensibly() async throws {
        let long = String(repeating: "very long label ", count: 625)  // 10,000 characters
        let start = Date(timeIntervalSince1970: 1_795_000_000)
        let document = ReportDocument(
            title: long, subtitle: long, generatedAt: start,
            blocks: [
                .kpis([KPITile(label: long, value: .nan), KPITile(label: "inf", value: .infinity, previous: 0)]),
                .chart(ChartBlock(title: "Empty", kind: .line, series: [])),
                .chart(ChartBlock(title: "All NaN", kind: .bar, series: [.init(name: long, points: [.init(time: start, value: .nan)])])),
                .chart(ChartBlock(title: "Gaps", kind: .area, series: [.init(name: "g", points: [
                    .init(time: start, value: 1), .init(time: start.addingTimeInterval(3600), value: .nan),
                    .init(time: start.addingTimeInterval(7200), value: -.infinity), .init(time: start.addingTimeInterval(10800), value: 3),
                ])])),
                .chart(ChartBlock(title: "Flat", kind: .stackedBar, series: [.init(name: "z", points: [.init(time: start, value: 0)])])),
                .paragraph(String(repeating: long, count: 8)),
                .table(TableBlock(columns: [long, "n"], rows: [[long, "1"], ["", ""]])),
                .table(TableBlock(columns: [], rows: [])),
            ])
        let rendered = try PDFRenderer.render(document)
        let path = try write(rendered, "hostile")
        let check = try await tool("qpdf", ["--check", path])
        #expect(check.contains("No syntax or stream encoding errors"))
        let text = try await text(path)
        #expect(text.contains("No data for this period"))
        #expect(text.contains("—"))  // NaN and infinity shown as a dash
        #expect(rendered.pageCount < 10)
    }

    @Test func badLogosAreClearErrors() throws {
        #expect(throws: ReportError("branding logo is not a PNG image")) {
            try Branding.checkLogo(Array("GIF89a....".utf8))
        }
        #expect(throws: ReportError.self) {
            try Branding.checkLogo(Branding.pngSignature + [UInt8](repeating: 0, count: 50 * 1024 * 1024))
        }
        // A PNG signature followed by garbage: Cairo refuses it, we report it.
        var document = SampleReport.document(charts: 1, rows: 1)
        document.branding.logoPNG = Branding.pngSignature + [1, 2, 3]
        #expect(throws: ReportError("branding logo is not a readable PNG image")) { try PDFRenderer.render(document) }
        #expect(throws: ReportError.self) { try Branding(json: ["primary_color": "blue"]) }
        #expect(throws: ReportError.self) { try Branding(json: ["logo_png_base64": "not base64!"]) }
    }

    @Test func realPNGLogoIsDrawn() async throws {
        // A 2×1 RGBA PNG.
        let png = Data(base64Encoded: "iVBORw0KGgoAAAANSUhEUgAAAAIAAAABCAYAAAD0In+KAAAADklEQVR4nGP4z8AAQv8BD/kD/YURmXYAAAAASUVORK5CYII=")!
        let branding = try Branding(json: ["company_name": "Logo Co", "logo_png_base64": png.base64EncodedString(), "primary_color": "#112233"])
        var document = SampleReport.document(charts: 1, rows: 3)
        document.branding = branding
        let rendered = try PDFRenderer.render(document)
        let path = try write(rendered, "logo")
        let images = try await tool("pdfimages", ["-list", path])
        #expect(images.split(separator: "\n").count >= 3)  // header lines + the logo
        #expect(try await text(path).contains("Logo Co"))
    }

    @Test func templatesFillFromDataAndNameWhatIsMissing() async throws {
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        let folder = root.appendingPathComponent("templates/reports").path
        let data = try ReportData.parse(try Data(contentsOf: URL(fileURLWithPath: folder + "/examples/weekly-overview.data.json")))
        for name in ["weekly-overview", "dashboard"] {
            let template = try ReportTemplate.named(name, folder: folder)
            let rendered = try PDFRenderer.render(try template.document(with: data))
            let text = try await text(try write(rendered, name))
            #expect(text.contains("Acme Analytics"))
            #expect(text.contains("Signups"))
        }
        #expect(throws: ReportError("unknown template 'nope'")) { try ReportTemplate.named("nope", folder: folder) }
        #expect(throws: ReportError("unknown template '../etc/passwd'")) { try ReportTemplate.named("../etc/passwd", folder: folder) }
        var partial = data
        partial.metrics["revenue"] = nil
        let template = try ReportTemplate.named("weekly-overview", folder: folder)
        #expect(throws: ReportError("template 'weekly-overview' uses metric 'revenue', which the data does not have (deleted or renamed?)")) {
            try template.document(with: partial)
        }
        #expect(throws: ReportError.self) { try ReportData.parse(Data(#"{"time_zone": "Mars/Olympus"}"#.utf8)) }
        #expect(throws: ReportError.self) { try ReportTemplate.parse(Data(#"{"title": "x", "blocks": [{"type": "pie"}]}"#.utf8)) }
    }

    @Test func niceTicksAndTimeAxisInZone() {
        #expect(NiceScale(lower: 0, upper: 97).ticks == [0, 20, 40, 60, 80, 100])
        #expect(NiceScale(lower: -12.5, upper: 3).ticks.first! <= -12.5)
        #expect(NiceScale(lower: 5, upper: 5).ticks.count >= 2)
        let start = Date(timeIntervalSince1970: 1_795_000_000)  // 2026-11-18T09:06:40Z
        let axis = TimeAxis(start: start, end: start.addingTimeInterval(6 * 86_400), timeZone: TimeZone(identifier: "Asia/Tokyo")!)
        // Day ticks fall on Tokyo midnights (15:00 UTC).
        #expect(!axis.ticks.isEmpty)
        #expect(axis.ticks.allSatisfy { Int($0.time.timeIntervalSince1970) % 86_400 == 15 * 3600 })
        #expect(ValueFormat.compact(-1_234_567) == "-1.23M")
        #expect(ValueFormat.compact(.nan) == "—")
        #expect(ValueFormat.grouped(-12.5) == "-12.5")
    }
}
