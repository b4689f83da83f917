import CCairo
import Foundation

/// Draws a chart block into a box: title, legend, y axis with nice ticks and grid, a
/// time axis in the report's zone, and the series — or a "No data" state.
struct ChartPainter {
    let canvas: Canvas
    let chart: ChartBlock
    let timeZone: TimeZone
    let palette: [RGBColor]

    static let gray = RGBColor(red: 0.42, green: 0.45, blue: 0.5)
    static let grid = RGBColor(red: 0.88, green: 0.89, blue: 0.91)

    func draw(x: Double, y: Double, width: Double, height: Double) {
        let context = canvas.context
        var top = y
        top += canvas.text(chart.title, x: x, y: top, width: width * 0.55, style: .init(size: 11, bold: true)) + 4
        drawLegend(right: x + width, y: y, width: width * 0.43)

        let series = chart.series.map { series in
            ChartBlock.Series(name: series.name, points: series.points.sorted { $0.time < $1.time })
        }
        guard chart.hasData else {
            canvas.fillRect(x, top, width, y + height - top, RGBColor(red: 0.97, green: 0.97, blue: 0.98))
            canvas.text(
                "No data for this period", x: x, y: top + (y + height - top) / 2 - 7, width: width,
                style: .init(size: 10, color: Self.gray, alignment: .center))
            return
        }

        // Value range: stacked bars sum per time; others use every finite value.
        let times = Array(Set(series.flatMap { $0.points.map(\.time) })).sorted()
        var low = 0.0, high = 0.0
        if chart.kind == .stackedBar {
            for time in times {
                var up = 0.0, down = 0.0
                for s in series {
                    for p in s.points where p.time == time && p.value.isFinite {
                        if p.value >= 0 { up += p.value } else { down += p.value }
                    }
                }
                high = max(high, up)
                low = min(low, down)
            }
        } else {
            let values = series.flatMap { $0.points.map(\.value) }.filter(\.isFinite)
            low = min(0, values.min() ?? 0)
            high = max(0, values.max() ?? 1)
        }
        let scale = NiceScale(lower: low, upper: high)

        // Plot area leaves room for tick labels.
        let labelStyle = Canvas.TextStyle(size: 7.5, color: Self.gray, alignment: .trailing)
        let axisWidth = min(60, scale.ticks.map { canvas.naturalWidth(ValueFormat.compact($0), style: labelStyle) }.max() ?? 20) + 6
        let plotX = x + axisWidth, plotY = top + 4
        let plotWidth = width - axisWidth - 4, plotHeight = y + height - plotY - 16
        guard plotWidth > 10, plotHeight > 10 else { return }
        func yFor(_ value: Double) -> Double {
            plotY + plotHeight - (value - scale.minimum) / (scale.maximum - scale.minimum) * plotHeight
        }
        for tick in scale.ticks {
            let ty = yFor(tick)
            canvas.line(plotX, ty, plotX + plotWidth, ty, tick == 0 ? Self.gray : Self.grid, width: tick == 0 ? 0.7 : 0.4)
            canvas.text(ValueFormat.compact(tick), x: x, y: ty - 5, width: axisWidth - 5, style: labelStyle)
        }

        let start = times.first!, end = times.last!
        let isBar = chart.kind == .bar || chart.kind == .stackedBar
        // Bars sit in bands, one per time; lines run edge to edge.
        let band = plotWidth / Double(max(times.count, 1))
        func xFor(_ time: Date) -> Double {
            if isBar {
                let index = times.firstIndex(of: time) ?? 0
                return plotX + band * (Double(index) + 0.5)
            }
            guard end > start else { return plotX + plotWidth / 2 }
            return plotX + time.timeIntervalSince(start) / end.timeIntervalSince(start) * plotWidth
        }

        // Time axis labels, spaced so they never overlap.
        let axis = TimeAxis(start: start, end: end, timeZone: timeZone, maximumTicks: max(2, Int(plotWidth / 70)))
        let tickStyle = Canvas.TextStyle(size: 7.5, color: Self.gray, alignment: .center)
        var lastRight = -Double.infinity
        for tick in axis.ticks {
            let tx: Double
            if isBar {
                guard let nearest = times.min(by: { abs($0.timeIntervalSince(tick.time)) < abs($1.timeIntervalSince(tick.time)) })
                else { continue }
                tx = xFor(nearest)
            } else {
                tx = xFor(tick.time)
            }
            let labelWidth = min(70, canvas.naturalWidth(tick.label, style: tickStyle) + 4)
            guard tx - labelWidth / 2 > lastRight else { continue }
            canvas.text(tick.label, x: tx - labelWidth / 2, y: plotY + plotHeight + 3, width: labelWidth, style: tickStyle)
            lastRight = tx + labelWidth / 2
        }

        cairo_save(context)
        cairo_rectangle(context, plotX, plotY - 1, plotWidth, plotHeight + 2)
        cairo_clip(context)
        switch chart.kind {
        case .line, .area:
            for (index, s) in series.enumerated() {
                drawLine(s, color: palette[index % palette.count], filled: chart.kind == .area, xFor: xFor, yFor: yFor)
            }
        case .bar:
            let width = band * 0.8 / Double(max(series.count, 1))
            for (index, s) in series.enumerated() {
                for p in s.points where p.value.isFinite {
                    let bx = xFor(p.time) - band * 0.4 + Double(index) * width
                    let top = yFor(max(p.value, 0)), bottom = yFor(min(p.value, 0))
                    canvas.fillRect(bx, top, max(width - 0.5, 0.3), bottom - top, palette[index % palette.count])
                }
            }
        case .stackedBar:
            for time in times {
                var up = 0.0, down = 0.0
                for (index, s) in series.enumerated() {
                    for p in s.points where p.time == time && p.value.isFinite {
                        let from = p.value >= 0 ? up : down
                        let to = from + p.value
                        if p.value >= 0 { up = to } else { down = to }
                        let top = yFor(max(from, to)), bottom = yFor(min(from, to))
                        canvas.fillRect(xFor(time) - band * 0.4, top, band * 0.8, bottom - top, palette[index % palette.count])
                    }
                }
            }
        }
        cairo_restore(context)
    }

    /// A non-finite value breaks the line instead of dragging it to an edge.
    private func drawLine(
        _ series: ChartBlock.Series, color: RGBColor, filled: Bool, xFor: (Date) -> Double, yFor: (Double) -> Double
    ) {
        let context = canvas.context
        var runs: [[(Double, Double)]] = [[]]
        for p in series.points {
            if p.value.isFinite {
                runs[runs.count - 1].append((xFor(p.time), yFor(p.value)))
            } else if !runs[runs.count - 1].isEmpty {
                runs.append([])
            }
        }
        for run in runs where !run.isEmpty {
            if filled, run.count > 1 {
                cairo_move_to(context, run[0].0, yFor(0))
                for (px, py) in run { cairo_line_to(context, px, py) }
                cairo_line_to(context, run[run.count - 1].0, yFor(0))
                cairo_close_path(context)
                canvas.setColor(color, alpha: 0.25)
                cairo_fill(context)
            }
            canvas.setColor(color)
            cairo_set_line_width(context, 1.4)
            cairo_set_line_join(context, CAIRO_LINE_JOIN_ROUND)
            if run.count == 1 {
                cairo_arc(context, run[0].0, run[0].1, 1.8, 0, 2 * .pi)
                cairo_fill(context)
                continue
            }
            cairo_move_to(context, run[0].0, run[0].1)
            for (px, py) in run.dropFirst() { cairo_line_to(context, px, py) }
            cairo_stroke(context)
        }
    }

    /// Swatch and name per series, right-aligned; names are ellipsized.
    private func drawLegend(right: Double, y: Double, width: Double) {
        guard chart.series.count > 1 else { return }
        let style = Canvas.TextStyle(size: 7.5, color: Self.gray)
        let shown = chart.series.prefix(6)
        let itemWidth = min(100, width / Double(shown.count))
        for (index, s) in shown.enumerated() {
            let ix = right - itemWidth * Double(shown.count - index)
            canvas.fillRect(ix, y + 3, 7, 7, palette[index % palette.count])
            canvas.text(s.name, x: ix + 10, y: y + 1, width: itemWidth - 14, style: style)
        }
    }
}
