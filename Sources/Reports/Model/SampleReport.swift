import Foundation

/// A synthetic report of known shape, for `bench report` and the tests: `pages` pages
/// holding `charts` charts (line, area, bar, stacked), KPI tiles and a `rows`-row table.
public enum SampleReport {
    public static func document(charts: Int = 20, rows: Int = 500, generatedAt: Date = Date(timeIntervalSince1970: 1_795_000_000)) -> ReportDocument {
        let start = generatedAt.addingTimeInterval(-30 * 86_400)
        let kinds: [ChartBlock.Kind] = [.line, .area, .bar, .stackedBar]
        var blocks: [ReportBlock] = [
            .heading("Key figures"),
            .kpis([
                KPITile(label: "Events", value: 12_345_678, previous: 11_000_000),
                KPITile(label: "Revenue", value: 48_210.5, unit: "€", previous: 51_000),
                KPITile(label: "Unique users", value: 91_204, previous: 91_204),
                KPITile(label: "Error rate", value: .nan, unit: "%"),
            ]),
        ]
        for index in 0..<charts {
            let kind = kinds[index % kinds.count]
            let seriesCount = kind == .line ? 1 : 3
            let series = (0..<seriesCount).map { s in
                ChartBlock.Series(
                    name: ["starter", "professional", "enterprise"][s],
                    points: (0..<30).map { day in
                        ChartBlock.Point(
                            time: start.addingTimeInterval(Double(day) * 86_400),
                            value: 1000 + Double(s * 400) + 300 * sin(Double(day + index) / 3))
                    })
            }
            blocks.append(.chart(ChartBlock(title: "Chart \(index + 1): \(kind.rawValue)", kind: kind, series: series)))
        }
        blocks.append(.heading("Top pages"))
        var tableRows: [[String]] = []
        for row in 0..<rows {
            let views = ValueFormat.grouped(Double(100_000 - row * 37))
            let visitors = ValueFormat.grouped(Double(80_000 - row * 29))
            let bounce = ValueFormat.trimmed(30 + Double(row % 40) * 0.7, digits: 1)
            tableRows.append(["\(row + 1)", "/docs/section-\(row / 10)/page-\(row)", views, visitors, bounce])
        }
        blocks.append(.table(TableBlock(
            title: "Pages by views", columns: ["#", "Page", "Views", "Unique visitors", "Bounce %"], rows: tableRows)))
        return ReportDocument(
            title: "Monthly overview", subtitle: "Synthetic report for benchmarks and tests",
            period: ReportPeriod(start: start, end: generatedAt), timeZone: TimeZone(identifier: "Europe/Berlin")!,
            branding: Branding(
                companyName: "Acme Analytics", primaryColor: RGBColor(hex: "#0F172A")!, accentColor: RGBColor(hex: "#0EA5E9")!,
                logoPNG: nil),
            generatedAt: generatedAt, blocks: blocks)
    }
}
