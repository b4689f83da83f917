import Foundation

/// A report layout from `templates/reports/*.json`: page setup, a title, and blocks that
/// name metrics and tables; `ReportData` supplies their values.
public struct ReportTemplate: Sendable {
    public enum Block: Sendable {
        case heading(String)
        case paragraph(String)
        case kpis(metrics: [String])
        case chart(title: String?, kind: ChartBlock.Kind, metrics: [String], byGroup: Bool)
        case table(name: String)
        /// One block per dashboard widget (the generic dashboard report).
        case widgets
        case pageBreak
    }

    public var name: String
    public var title: String
    public var subtitle: String?
    public var page: PageSetup
    public var blocks: [Block]

    /// The generic dashboard layout (as `templates/reports/dashboard.json`), for a process
    /// started where that folder is not at hand.
    public static let builtinDashboard = ReportTemplate(
        name: "dashboard", title: "{{company}} dashboard report", subtitle: "{{period}} · times in {{time_zone}}",
        page: PageSetup(size: .a4, orientation: .landscape), blocks: [.widgets])

    public static func load(path: String) throws(ReportError) -> ReportTemplate {
        guard let data = FileManager.default.contents(atPath: path) else {
            throw ReportError("unknown template: cannot read \(path)")
        }
        return try parse(data, source: path)
    }

    /// A template shipped in `templates/reports/` by name (`dashboard`, `weekly-overview`).
    public static func named(_ name: String, folder: String) throws(ReportError) -> ReportTemplate {
        guard name.range(of: #"^[a-z0-9][a-z0-9_-]{0,63}$"#, options: .regularExpression) != nil else {
            throw ReportError("unknown template '\(name)'")
        }
        let path = folder + "/" + name + ".json"
        guard FileManager.default.fileExists(atPath: path) else { throw ReportError("unknown template '\(name)'") }
        return try load(path: path)
    }

    public static func parse(_ data: Data, source: String = "template") throws(ReportError) -> ReportTemplate {
        guard let root = (try? JSONSerialization.jsonObject(with: data)) as? [String: Any] else {
            throw ReportError("\(source): not a JSON object")
        }
        guard let title = root["title"] as? String else { throw ReportError("\(source): 'title' is required") }
        var page = PageSetup()
        if let setup = root["page"] as? [String: Any] {
            if let size = setup["size"] {
                guard let text = size as? String, let value = PageSetup.Size(rawValue: text.lowercased()) else {
                    throw ReportError("\(source): page size must be a4 or letter")
                }
                page.size = value
            }
            if let orientation = setup["orientation"] {
                guard let text = orientation as? String, let value = PageSetup.Orientation(rawValue: text.lowercased()) else {
                    throw ReportError("\(source): page orientation must be portrait or landscape")
                }
                page.orientation = value
            }
        }
        guard let items = root["blocks"] as? [[String: Any]] else { throw ReportError("\(source): 'blocks' must be an array of objects") }
        var blocks: [Block] = []
        for (index, item) in items.enumerated() {
            let at = "\(source): blocks[\(index)]"
            switch item["type"] as? String {
            case "heading":
                guard let text = item["text"] as? String else { throw ReportError("\(at): heading needs 'text'") }
                blocks.append(.heading(text))
            case "paragraph":
                guard let text = item["text"] as? String else { throw ReportError("\(at): paragraph needs 'text'") }
                blocks.append(.paragraph(text))
            case "kpis":
                guard let metrics = item["metrics"] as? [String], !metrics.isEmpty else {
                    throw ReportError("\(at): kpis needs 'metrics', a list of metric keys")
                }
                blocks.append(.kpis(metrics: metrics))
            case "chart":
                let kindName = item["chart"] as? String ?? "line"
                guard let kind = ChartBlock.Kind(rawValue: kindName) else {
                    throw ReportError("\(at): chart must be one of \(ChartBlock.Kind.allCases.map(\.rawValue).joined(separator: ", "))")
                }
                let metrics = (item["metrics"] as? [String]) ?? (item["metric"] as? String).map { [$0] } ?? []
                guard !metrics.isEmpty else { throw ReportError("\(at): chart needs 'metric' or 'metrics'") }
                blocks.append(.chart(title: item["title"] as? String, kind: kind, metrics: metrics, byGroup: item["by_group"] as? Bool ?? false))
            case "table":
                guard let name = item["table"] as? String else { throw ReportError("\(at): table needs 'table', a table key") }
                blocks.append(.table(name: name))
            case "widgets":
                blocks.append(.widgets)
            case "page_break":
                blocks.append(.pageBreak)
            case let other:
                throw ReportError("\(at): unknown block type '\(other ?? "none")'")
            }
        }
        return ReportTemplate(
            name: root["name"] as? String ?? "report", title: title, subtitle: root["subtitle"] as? String, page: page,
            blocks: blocks)
    }

    /// The document for this data. A metric or table the template names and the data
    /// lacks is an error that names both.
    public func document(with data: ReportData) throws(ReportError) -> ReportDocument {
        func metric(_ key: String) throws(ReportError) -> ReportData.Metric {
            guard let metric = data.metrics[key] else {
                throw ReportError("template '\(name)' uses metric '\(key)', which the data does not have (deleted or renamed?)")
            }
            return metric
        }
        var blocks: [ReportBlock] = []
        for block in self.blocks {
            switch block {
            case .heading(let text): blocks.append(.heading(data.substitute(text)))
            case .paragraph(let text): blocks.append(.paragraph(data.substitute(text)))
            case .pageBreak: blocks.append(.pageBreak)
            case .kpis(let keys):
                var tiles: [KPITile] = []
                for key in keys {
                    let metric = try metric(key)
                    tiles.append(KPITile(label: metric.name, value: metric.total, unit: metric.unit, previous: metric.previousTotal))
                }
                blocks.append(.kpis(tiles))
            case .chart(let title, let kind, let keys, let byGroup):
                var series: [ChartBlock.Series] = []
                var unit: String?
                for key in keys {
                    let metric = try metric(key)
                    unit = unit ?? metric.unit
                    if byGroup, !metric.groups.isEmpty {
                        series += metric.groups.map { ChartBlock.Series(name: $0.name, points: $0.points) }
                    } else {
                        series.append(ChartBlock.Series(name: metric.name, points: metric.points))
                    }
                }
                let defaultTitle = keys.compactMap { data.metrics[$0]?.name }.joined(separator: ", ")
                blocks.append(.chart(ChartBlock(title: title ?? defaultTitle, kind: kind, series: series, unit: unit)))
            case .table(let key):
                guard let table = data.tables[key] else {
                    throw ReportError("template '\(name)' uses table '\(key)', which the data does not have")
                }
                blocks.append(.table(table))
            case .widgets:
                for widget in data.widgets {
                    let metric = try metric(widget.metric)
                    let title = widget.title ?? metric.name
                    switch widget.chart {
                    case "kpi":
                        blocks.append(.kpis([KPITile(label: title, value: metric.total, unit: metric.unit, previous: metric.previousTotal)]))
                    case "table":
                        let formatter = ISO8601DateFormatter()
                        formatter.timeZone = data.timeZone
                        blocks.append(.table(TableBlock(
                            title: title, columns: ["Time", metric.name],
                            rows: metric.points.map { [formatter.string(from: $0.time), ValueFormat.grouped($0.value)] })))
                    default:
                        let kind = ChartBlock.Kind(rawValue: widget.chart) ?? .line
                        let series = metric.groups.isEmpty
                            ? [ChartBlock.Series(name: metric.name, points: metric.points)]
                            : metric.groups.map { ChartBlock.Series(name: $0.name, points: $0.points) }
                        blocks.append(.chart(ChartBlock(title: title, kind: kind, series: series, unit: metric.unit)))
                    }
                }
            }
        }
        return ReportDocument(
            title: data.substitute(title), subtitle: subtitle.map(data.substitute), period: data.period,
            timeZone: data.timeZone, page: page, branding: data.branding, generatedAt: data.generatedAt, blocks: blocks)
    }
}
