import CCairo
import Foundation

/// Drawing on one Cairo context: shapes in points, text laid out by Pango (wrapping,
/// ellipsizing, and per-glyph font fallback through fontconfig).
final class Canvas {
    let context: OpaquePointer

    init(context: OpaquePointer) {
        self.context = context
    }

    // Fonts are a fallback list: fontconfig picks the first with each glyph.
    static let fontFamilies = "DejaVu Sans,Noto Sans,Noto Sans CJK SC,Noto Sans CJK JP,WenQuanYi Micro Hei,sans-serif"

    func setColor(_ color: RGBColor, alpha: Double = 1) {
        cairo_set_source_rgba(context, color.red, color.green, color.blue, alpha)
    }

    func fillRect(_ x: Double, _ y: Double, _ width: Double, _ height: Double, _ color: RGBColor, alpha: Double = 1) {
        guard width > 0, height > 0 else { return }
        setColor(color, alpha: alpha)
        cairo_rectangle(context, x, y, width, height)
        cairo_fill(context)
    }

    func line(_ x1: Double, _ y1: Double, _ x2: Double, _ y2: Double, _ color: RGBColor, width: Double = 0.5) {
        setColor(color)
        cairo_set_line_width(context, width)
        cairo_move_to(context, x1, y1)
        cairo_line_to(context, x2, y2)
        cairo_stroke(context)
    }

    struct TextStyle {
        var size: Double = 9
        var bold = false
        var color = RGBColor(red: 0.12, green: 0.14, blue: 0.18)
        var alignment: Alignment = .leading
        /// nil: one line, ellipsized at the end. Otherwise wrapped onto at most this many
        /// lines (0: no limit), the last ellipsized.
        var maximumLines: Int? = nil

        enum Alignment { case leading, center, trailing }
    }

    /// Lays out `text` in a box `width` wide (nil: unbounded); the layout is released after `use`.
    func withLayout<T>(_ text: String, width: Double?, style: TextStyle, _ use: (OpaquePointer) -> T) -> T {
        let layout = pango_cairo_create_layout(context)!
        defer { g_object_unref(UnsafeMutableRawPointer(layout)) }
        let description = pango_font_description_from_string("\(Self.fontFamilies) \(style.bold ? "Bold " : "")\(style.size)")
        defer { pango_font_description_free(description) }
        pango_layout_set_font_description(layout, description)
        // Pango refuses invalid UTF-8 and NUL; Swift strings are valid, NULs are dropped.
        let clean = text.contains("\u{0}") ? text.replacingOccurrences(of: "\u{0}", with: "") : text
        pango_layout_set_text(layout, clean, -1)
        guard let width else { return use(layout) }
        pango_layout_set_width(layout, Int32(max(1, width) * Double(ccairo_pango_scale())))
        switch style.maximumLines {
        case nil:
            pango_layout_set_ellipsize(layout, PANGO_ELLIPSIZE_END)
            pango_layout_set_single_paragraph_mode(layout, 1)
        case let lines?:
            pango_layout_set_wrap(layout, PANGO_WRAP_WORD_CHAR)
            if lines > 0 {
                pango_layout_set_ellipsize(layout, PANGO_ELLIPSIZE_END)
                pango_layout_set_height(layout, -Int32(lines))
            }
        }
        let alignment: PangoAlignment = switch style.alignment {
        case .leading: PANGO_ALIGN_LEFT
        case .center: PANGO_ALIGN_CENTER
        case .trailing: PANGO_ALIGN_RIGHT
        }
        pango_layout_set_alignment(layout, alignment)
        return use(layout)
    }

    /// Height of `text` laid out in `width`.
    func measure(_ text: String, width: Double, style: TextStyle) -> Double {
        withLayout(text, width: width, style: style) { layout in
            var logical = PangoRectangle()
            pango_layout_get_extents(layout, nil, &logical)
            return Double(logical.height) / Double(ccairo_pango_scale())
        }
    }

    /// Natural width of `text` on one line (no width: nothing wraps or is cut).
    func naturalWidth(_ text: String, style: TextStyle) -> Double {
        withLayout(text, width: nil, style: style) { layout in
            var logical = PangoRectangle()
            pango_layout_get_extents(layout, nil, &logical)
            return Double(logical.width) / Double(ccairo_pango_scale())
        }
    }

    /// Draws `text` with its top-left corner at (x, y); returns the height used.
    @discardableResult
    func text(_ text: String, x: Double, y: Double, width: Double, style: TextStyle) -> Double {
        withLayout(text, width: width, style: style) { layout in
            setColor(style.color)
            cairo_move_to(context, x, y)
            pango_cairo_show_layout(context, layout)
            var logical = PangoRectangle()
            pango_layout_get_extents(layout, nil, &logical)
            return Double(logical.height) / Double(ccairo_pango_scale())
        }
    }
}
