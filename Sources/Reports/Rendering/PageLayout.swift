import CCairo
import Foundation

/// Splits a document's blocks into pages. Every fragment has a known height before
/// anything is drawn; tables flow across pages with their header repeated.
struct PageLayout {
    let document: ReportDocument
    let canvas: Canvas
    let pageWidth: Double
    let pageHeight: Double

    var contentWidth: Double { pageWidth - 2 * PDFRenderer.margin }
    var contentBottom: Double { pageHeight - PDFRenderer.margin - PDFRenderer.footerHeight + 14 }

    static let kpiRowHeight = 62.0
    static let chartHeight = 200.0
    static let tableRowHeight = 14.0
    static let tableHeaderHeight = 17.0
    static let gap = 12.0

    enum Fragment {
        case heading(String)
        case paragraph(String, maximumLines: Int)
        case kpiRow([KPITile])
        case chart(ChartBlock)
        case table(TableBlock, rows: Range<Int>, titled: Bool, widths: [Double])
    }

    struct Placed {
        let fragment: Fragment
        let y: Double
        let height: Double
    }

    var palette: [RGBColor] {
        [document.branding.accentColor]
            + ["#10B981", "#F59E0B", "#EF4444", "#8B5CF6", "#06B6D4", "#EC4899"].compactMap(RGBColor.init(hex:))
            + [document.branding.primaryColor]
    }

    func paginate() -> [[Placed]] {
        var pages: [[Placed]] = [[]]
        let firstTop = PDFRenderer.margin + PDFRenderer.headerHeight - 20
        let laterTop = PDFRenderer.runningHeaderHeight + 14
        var y = firstTop
        var atTop = true
        func newPage() {
            pages.append([])
            y = laterTop
            atTop = true
        }
        func place(_ fragment: Fragment, height: Double) {
            if !atTop, y + height > contentBottom { newPage() }
            pages[pages.count - 1].append(Placed(fragment: fragment, y: y, height: height))
            y += height + Self.gap
            atTop = false
        }
        let pageRoom = contentBottom - laterTop

        for block in document.blocks {
            switch block {
            case .pageBreak:
                if !atTop { newPage() }
            case .heading(let text):
                place(.heading(text), height: canvas.measure(text, width: contentWidth, style: .init(size: 13, bold: true, maximumLines: 2)))
            case .paragraph(let text):
                let style = Canvas.TextStyle(size: 9.5, maximumLines: 0)
                var height = canvas.measure(text, width: contentWidth, style: style)
                var lines = 0
                if height > pageRoom {
                    // Longer than a page: shown up to a page, ellipsized.
                    let lineHeight = canvas.measure("Ag", width: contentWidth, style: style)
                    lines = max(1, Int(pageRoom / lineHeight) - 1)
                    height = canvas.measure(text, width: contentWidth, style: .init(size: 9.5, maximumLines: lines))
                }
                place(.paragraph(text, maximumLines: lines), height: height)
            case .kpis(let tiles):
                for start in stride(from: 0, to: tiles.count, by: 4) {
                    place(.kpiRow(Array(tiles[start..<min(start + 4, tiles.count)])), height: Self.kpiRowHeight)
                }
            case .chart(let chart):
                place(.chart(chart), height: Self.chartHeight)
            case .table(let table):
                let widths = columnWidths(table)
                let titleHeight = table.title == nil ? 0.0 : 18.0
                var next = 0
                var titled = true
                repeat {
                    let fixed = (titled ? titleHeight : 0) + Self.tableHeaderHeight
                    var room = Int((contentBottom - y - fixed) / Self.tableRowHeight)
                    if room < 1 || (room < 3 && table.rows.count - next > room && !atTop) {
                        newPage()
                        room = Int((contentBottom - y - fixed) / Self.tableRowHeight)
                    }
                    let end = min(table.rows.count, next + max(room, 1))
                    place(
                        .table(table, rows: next..<end, titled: titled, widths: widths),
                        height: fixed + Double(end - next) * Self.tableRowHeight)
                    next = end
                    titled = false
                } while next < table.rows.count
            }
        }
        if pages.count > 1, pages.last!.isEmpty { pages.removeLast() }
        return pages
    }

    /// Natural widths of the header and the first rows, shrunk proportionally to fit.
    func columnWidths(_ table: TableBlock) -> [Double] {
        guard !table.columns.isEmpty else { return [] }
        let header = Canvas.TextStyle(size: 8, bold: true)
        let cell = Canvas.TextStyle(size: 8)
        var natural = table.columns.map { min(260, canvas.naturalWidth($0, style: header)) + 10 }
        for row in table.rows.prefix(100) {
            for (index, value) in row.prefix(natural.count).enumerated() {
                natural[index] = max(natural[index], min(260, canvas.naturalWidth(value, style: cell) + 10))
            }
        }
        let total = natural.reduce(0, +)
        return natural.map { $0 / total * contentWidth }
    }

    func draw(_ placed: Placed) {
        let x = PDFRenderer.margin
        switch placed.fragment {
        case .heading(let text):
            canvas.text(text, x: x, y: placed.y, width: contentWidth, style: .init(size: 13, bold: true, maximumLines: 2))
        case .paragraph(let text, let lines):
            canvas.text(text, x: x, y: placed.y, width: contentWidth, style: .init(size: 9.5, maximumLines: lines))
        case .kpiRow(let tiles):
            drawKPIs(tiles, y: placed.y)
        case .chart(let chart):
            ChartPainter(canvas: canvas, chart: chart, timeZone: document.timeZone, palette: palette)
                .draw(x: x, y: placed.y, width: contentWidth, height: placed.height)
        case .table(let table, let rows, let titled, let widths):
            drawTable(table, rows: rows, titled: titled, widths: widths, y: placed.y)
        }
    }

    func drawKPIs(_ tiles: [KPITile], y: Double) {
        let spacing = 10.0
        let width = (contentWidth - spacing * 3) / 4
        let up = RGBColor(red: 0.06, green: 0.6, blue: 0.35), down = RGBColor(red: 0.82, green: 0.2, blue: 0.2)
        for (index, tile) in tiles.enumerated() {
            let tx = PDFRenderer.margin + Double(index) * (width + spacing)
            canvas.fillRect(tx, y, width, Self.kpiRowHeight, document.branding.accentColor.lightened(0.93))
            canvas.fillRect(tx, y, 3, Self.kpiRowHeight, document.branding.accentColor)
            canvas.text(tile.label, x: tx + 10, y: y + 7, width: width - 16, style: .init(size: 8, color: PDFRenderer.gray))
            canvas.text(
                ValueFormat.compact(tile.value, unit: tile.unit), x: tx + 10, y: y + 20, width: width - 16,
                style: .init(size: 17, bold: true))
            if let change = ValueFormat.change(tile.value, from: tile.previous) {
                let mark = change > 0 ? "▲" : change < 0 ? "▼" : "■"
                let text = "\(mark) \(ValueFormat.trimmed(abs(change), digits: 1))% vs prev."
                canvas.text(
                    text, x: tx + 10, y: y + 44, width: width - 16,
                    style: .init(size: 7.5, color: change > 0 ? up : change < 0 ? down : PDFRenderer.gray))
            }
        }
    }

    func drawTable(_ table: TableBlock, rows: Range<Int>, titled: Bool, widths: [Double], y: Double) {
        var y = y
        if titled, let title = table.title {
            canvas.text(title, x: PDFRenderer.margin, y: y, width: contentWidth, style: .init(size: 11, bold: true))
            y += 18
        }
        let alignments = table.alignments
        func cells(_ values: [String], y: Double, style: Canvas.TextStyle) {
            var x = PDFRenderer.margin
            for (index, width) in widths.enumerated() {
                var style = style
                style.alignment = alignments[index] == .trailing ? .trailing : .leading
                let value = index < values.count ? values[index] : ""
                canvas.text(value, x: x + 4, y: y + 2.5, width: width - 8, style: style)
                x += width
            }
        }
        canvas.fillRect(PDFRenderer.margin, y, contentWidth, Self.tableHeaderHeight, document.branding.primaryColor)
        cells(table.columns, y: y + 1, style: .init(size: 8, bold: true, color: RGBColor(red: 1, green: 1, blue: 1)))
        y += Self.tableHeaderHeight
        for row in rows {
            if (row - rows.lowerBound) % 2 == 1 {
                canvas.fillRect(PDFRenderer.margin, y, contentWidth, Self.tableRowHeight, RGBColor(red: 0.96, green: 0.97, blue: 0.98))
            }
            cells(table.rows[row], y: y, style: .init(size: 8))
            y += Self.tableRowHeight
        }
    }
}
