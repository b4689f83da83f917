import ArgumentParser
import Foundation
import Reports

struct ReportCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "report",
        abstract: "Reports without a database (for template designers).",
        subcommands: [Render.self])

    struct Render: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Render a template with JSON data to a PDF, offline.",
            discussion: "Example: analyticspro report render --template templates/reports/weekly-overview.json --data templates/reports/examples/weekly-overview.data.json --out report.pdf")

        @Option(help: "Template file (JSON), e.g. templates/reports/weekly-overview.json.") var template: String
        @Option(help: "Data file (JSON): metrics, tables, widgets, branding, period, time_zone.") var data: String
        @Option(help: "Where to write the PDF.") var out: String

        func run() throws {
            do {
                let template = try ReportTemplate.load(path: template)
                guard let bytes = FileManager.default.contents(atPath: data) else {
                    throw ReportError("cannot read data file \(data)")
                }
                let document = try template.document(with: ReportData.parse(bytes))
                let pdf = try PDFRenderer.render(document)
                guard FileManager.default.createFile(atPath: out, contents: Data(pdf.bytes)) else {
                    throw ReportError("cannot write \(out)")
                }
                print("wrote \(out) (\(pdf.pageCount) pages, \(pdf.bytes.count) bytes)")
            } catch let error as ReportError {
                throw CLIFailure.usage(error.message)
            }
        }
    }
}
