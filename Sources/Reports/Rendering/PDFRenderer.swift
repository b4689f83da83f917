import CCairo
import Foundation

/// Renders a `ReportDocument` to PDF bytes with Cairo: blocks are measured and paginated
/// first (so every footer can say "Page n of N"), then drawn. Vector output, fonts
/// embedded as subsets, and the same bytes for the same document.
public enum PDFRenderer {
    static let margin = 42.0
    static let headerHeight = 84.0
    static let runningHeaderHeight = 26.0
    static let footerHeight = 24.0
    static let gray = RGBColor(red: 0.42, green: 0.45, blue: 0.5)

    public struct Rendered: Sendable {
        public let bytes: [UInt8]
        public let pageCount: Int
    }

    public static func render(_ document: ReportDocument) throws(ReportError) -> Rendered {
        let (pageWidth, pageHeight) = document.page.dimensions
        let output = OutputBuffer()
        let box = Unmanaged.passRetained(output)
        defer { box.release() }
        guard let surface = cairo_pdf_surface_create_for_stream(
            { closure, data, length in
                guard let closure, let data else { return CAIRO_STATUS_WRITE_ERROR }
                Unmanaged<OutputBuffer>.fromOpaque(closure).takeUnretainedValue()
                    .bytes.append(contentsOf: UnsafeBufferPointer(start: data, count: Int(length)))
                return CAIRO_STATUS_SUCCESS
            }, box.toOpaque(), pageWidth, pageHeight)
        else { throw ReportError("cannot create a PDF surface") }
        defer { cairo_surface_destroy(surface) }
        setMetadata(surface, document)
        guard let context = cairo_create(surface) else { throw ReportError("cannot create a drawing context") }
        defer { cairo_destroy(context) }

        let logo = try document.branding.logoPNG.map { bytes throws(ReportError) in try loadPNG(bytes) }
        defer { if let logo { cairo_surface_destroy(logo) } }

        let canvas = Canvas(context: context)
        let layout = PageLayout(document: document, canvas: canvas, pageWidth: pageWidth, pageHeight: pageHeight)
        let pages = layout.paginate()
        for (index, page) in pages.enumerated() {
            if index == 0 {
                drawTitleHeader(canvas, document, logo: logo, pageWidth: pageWidth)
            } else {
                drawRunningHeader(canvas, document, pageWidth: pageWidth)
            }
            for placed in page { layout.draw(placed) }
            drawFooter(canvas, document, page: index + 1, of: pages.count, pageWidth: pageWidth, pageHeight: pageHeight)
            cairo_show_page(context)
        }
        cairo_surface_finish(surface)
        let status = cairo_surface_status(surface)
        guard status == CAIRO_STATUS_SUCCESS else {
            throw ReportError("PDF rendering failed: \(String(cString: cairo_status_to_string(status)))")
        }
        return Rendered(bytes: output.bytes, pageCount: pages.count)
    }

    final class OutputBuffer {
        var bytes: [UInt8] = []
    }

    static func setMetadata(_ surface: OpaquePointer, _ document: ReportDocument) {
        let formatter = ISO8601DateFormatter()
        formatter.formatOptions = [.withInternetDateTime]
        let date = formatter.string(from: document.generatedAt)
        cairo_pdf_surface_set_metadata(surface, CAIRO_PDF_METADATA_TITLE, document.title)
        cairo_pdf_surface_set_metadata(surface, CAIRO_PDF_METADATA_CREATOR, "AnalyticsPro")
        cairo_pdf_surface_set_metadata(surface, CAIRO_PDF_METADATA_CREATE_DATE, date)
        cairo_pdf_surface_set_metadata(surface, CAIRO_PDF_METADATA_MOD_DATE, date)
        if let company = document.branding.companyName {
            cairo_pdf_surface_set_metadata(surface, CAIRO_PDF_METADATA_AUTHOR, company)
        }
    }

    /// Decodes PNG bytes through Cairo; anything Cairo cannot read is an error, not a crash.
    static func loadPNG(_ bytes: [UInt8]) throws(ReportError) -> OpaquePointer {
        try Branding.checkLogo(bytes)
        final class Reader {
            let bytes: [UInt8]
            var offset = 0
            init(_ bytes: [UInt8]) { self.bytes = bytes }
        }
        let reader = Unmanaged.passRetained(Reader(bytes))
        defer { reader.release() }
        let surface = cairo_image_surface_create_from_png_stream(
            { closure, data, length in
                guard let closure, let data else { return CAIRO_STATUS_READ_ERROR }
                let reader = Unmanaged<Reader>.fromOpaque(closure).takeUnretainedValue()
                let count = Int(length)
                guard reader.offset + count <= reader.bytes.count else { return CAIRO_STATUS_READ_ERROR }
                reader.bytes.withUnsafeBufferPointer { buffer in
                    data.update(from: buffer.baseAddress! + reader.offset, count: count)
                }
                reader.offset += count
                return CAIRO_STATUS_SUCCESS
            }, reader.toOpaque())
        guard let surface else { throw ReportError("branding logo cannot be decoded") }
        guard cairo_surface_status(surface) == CAIRO_STATUS_SUCCESS,
            cairo_image_surface_get_width(surface) > 0, cairo_image_surface_get_height(surface) > 0
        else {
            cairo_surface_destroy(surface)
            throw ReportError("branding logo is not a readable PNG image")
        }
        return surface
    }

    static func drawTitleHeader(_ canvas: Canvas, _ document: ReportDocument, logo: OpaquePointer?, pageWidth: Double) {
        let context = canvas.context
        let branding = document.branding
        canvas.fillRect(0, 0, pageWidth, 6, branding.primaryColor)
        var x = margin
        let top = 20.0
        if let logo {
            // Fit within 140 × 32 points, keeping the aspect ratio.
            let width = Double(cairo_image_surface_get_width(logo)), height = Double(cairo_image_surface_get_height(logo))
            let scale = min(140 / width, 32 / height)
            cairo_save(context)
            cairo_translate(context, x, top)
            cairo_scale(context, scale, scale)
            cairo_set_source_surface(context, logo, 0, 0)
            cairo_paint(context)
            cairo_restore(context)
            x += width * scale + 10
        }
        if let company = branding.companyName {
            canvas.text(company, x: x, y: top + 8, width: pageWidth - margin - x, style: .init(size: 11, bold: true, color: branding.primaryColor))
        }
        let titleHeight = canvas.text(
            document.title, x: margin, y: top + 38, width: pageWidth - 2 * margin, style: .init(size: 17, bold: true))
        if let subtitle = document.subtitle {
            canvas.text(subtitle, x: margin, y: top + 40 + titleHeight, width: pageWidth - 2 * margin, style: .init(size: 9.5, color: gray))
        }
    }

    static func drawRunningHeader(_ canvas: Canvas, _ document: ReportDocument, pageWidth: Double) {
        canvas.fillRect(0, 0, pageWidth, 3, document.branding.primaryColor)
        let label = [document.branding.companyName, document.title].compactMap { $0 }.joined(separator: " · ")
        canvas.text(label, x: margin, y: 12, width: pageWidth - 2 * margin, style: .init(size: 7.5, color: gray))
    }

    static func drawFooter(_ canvas: Canvas, _ document: ReportDocument, page: Int, of pages: Int, pageWidth: Double, pageHeight: Double) {
        let y = pageHeight - margin + 14
        canvas.line(margin, y - 4, pageWidth - margin, y - 4, RGBColor(red: 0.85, green: 0.86, blue: 0.88))
        let formatter = DateFormatter()
        formatter.locale = Locale(identifier: "en_US_POSIX")
        formatter.timeZone = document.timeZone
        formatter.dateFormat = "yyyy-MM-dd HH:mm zzz"
        var left = "Generated \(formatter.string(from: document.generatedAt))"
        if let period = document.period {
            formatter.dateFormat = "yyyy-MM-dd"
            left += " · Period \(formatter.string(from: period.start)) – \(formatter.string(from: period.end)) (\(document.timeZone.identifier))"
        }
        let style = Canvas.TextStyle(size: 7, color: gray)
        canvas.text(left, x: margin, y: y, width: pageWidth - 2 * margin - 70, style: style)
        var right = style
        right.alignment = .trailing
        canvas.text("Page \(page) of \(pages)", x: pageWidth - margin - 70, y: y, width: 70, style: right)
    }
}
