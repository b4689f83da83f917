import Foundation

/// The values a template is filled with: metrics (totals, series, groups), tables,
/// dashboard widgets, branding, period and time zone. Read from JSON for
/// `report render --data`, or built from rollups by the export job.
public struct ReportData: Sendable {
    public struct Metric: Sendable {
        public var name: String
        public var unit: String?
        public var total: Double?
        public var previousTotal: Double?
        public var points: [ChartBlock.Point]
        public var groups: [Group]

        public init(
            name: String, unit: String? = nil, total: Double?, previousTotal: Double? = nil, points: [ChartBlock.Point],
            groups: [Group] = []
        ) {
            self.name = name
            self.unit = unit
            self.total = total
            self.previousTotal = previousTotal
            self.points = points
            self.groups = groups
        }
    }

    public struct Group: Sendable {
        public var name: String
        public var points: [ChartBlock.Point]

        public init(name: String, points: [ChartBlock.Point]) {
            self.name = name
            self.points = points
        }
    }

    public struct Widget: Sendable {
        public var title: String?
        public var chart: String
        public var metric: String

        public init(title: String?, chart: String, metric: String) {
            self.title = title
            self.chart = chart
            self.metric = metric
        }
    }

    public var branding: Branding
    public var timeZone: TimeZone
    public var period: ReportPeriod?
    public var generatedAt: Date
    public var metrics: [String: Metric]
    public var tables: [String: TableBlock]
    public var widgets: [Widget]

    public init(
        branding: Branding = .neutral, timeZone: TimeZone = .gmt, period: ReportPeriod? = nil, generatedAt: Date,
        metrics: [String: Metric] = [:], tables: [String: TableBlock] = [:], widgets: [Widget] = []
    ) {
        self.branding = branding
        self.timeZone = timeZone
        self.period = period
        self.generatedAt = generatedAt
        self.metrics = metrics
        self.tables = tables
        self.widgets = widgets
    }

    /// `{{company}}`, `{{period}}` and `{{time_zone}}` in template text.
    func substitute(_ text: String) -> String {
        guard text.contains("{{") else { return text }
        let formatter = DateFormatter()
        formatter.locale = Locale(identifier: "en_US_POSIX")
        formatter.timeZone = timeZone
        formatter.dateFormat = "MMM d, yyyy"
        let period = self.period.map { "\(formatter.string(from: $0.start)) – \(formatter.string(from: $0.end))" } ?? ""
        return text
            .replacingOccurrences(of: "{{company}}", with: branding.companyName ?? "")
            .replacingOccurrences(of: "{{period}}", with: period)
            .replacingOccurrences(of: "{{time_zone}}", with: timeZone.identifier)
    }

    public static func parse(_ data: Data, now: Date = Date()) throws(ReportError) -> ReportData {
        guard let root = (try? JSONSerialization.jsonObject(with: data)) as? [String: Any] else {
            throw ReportError("report data: not a JSON object")
        }
        var result = ReportData(generatedAt: now)
        if let branding = root["branding"] {
            guard let object = branding as? [String: Any] else { throw ReportError("report data: 'branding' must be an object") }
            result.branding = try Branding(json: object)
        }
        if let company = root["company"] as? String { result.branding.companyName = company }
        if let zone = root["time_zone"] {
            guard let name = zone as? String, let timeZone = TimeZone(identifier: name) else {
                throw ReportError("report data: 'time_zone' must be an IANA zone such as Europe/Berlin")
            }
            result.timeZone = timeZone
        }
        if let generated = root["generated_at"] {
            guard let text = generated as? String, let date = parseDate(text) else {
                throw ReportError("report data: 'generated_at' must be ISO 8601")
            }
            result.generatedAt = date
        }
        if let period = root["period"] as? [String: Any] {
            guard let start = (period["start"] as? String).flatMap(parseDate), let end = (period["end"] as? String).flatMap(parseDate),
                start <= end
            else { throw ReportError("report data: 'period' needs ISO 8601 'start' ≤ 'end'") }
            result.period = ReportPeriod(start: start, end: end)
        }
        for (key, value) in root["metrics"] as? [String: Any] ?? [:] {
            guard let object = value as? [String: Any] else { throw ReportError("report data: metrics.\(key) must be an object") }
            var groups: [Group] = []
            for (name, points) in (object["groups"] as? [String: Any] ?? [:]).sorted(by: { $0.key < $1.key }) {
                groups.append(Group(name: name, points: try parsePoints(points, at: "metrics.\(key).groups.\(name)")))
            }
            result.metrics[key] = Metric(
                name: object["name"] as? String ?? key, unit: object["unit"] as? String, total: number(object["total"]),
                previousTotal: number(object["previous_total"]),
                points: try parsePoints(object["points"] ?? [], at: "metrics.\(key).points"), groups: groups)
        }
        for (key, value) in root["tables"] as? [String: Any] ?? [:] {
            guard let object = value as? [String: Any], let columns = object["columns"] as? [String],
                let rows = object["rows"] as? [[Any]]
            else { throw ReportError("report data: tables.\(key) needs 'columns' (strings) and 'rows' (arrays)") }
            result.tables[key] = TableBlock(
                title: object["title"] as? String, columns: columns, rows: rows.map { $0.map(cellText) })
        }
        for (index, value) in (root["widgets"] as? [[String: Any]] ?? []).enumerated() {
            guard let metric = value["metric"] as? String else { throw ReportError("report data: widgets[\(index)] needs 'metric'") }
            result.widgets.append(Widget(title: value["title"] as? String, chart: value["chart"] as? String ?? "line", metric: metric))
        }
        return result
    }

    static func parsePoints(_ value: Any, at path: String) throws(ReportError) -> [ChartBlock.Point] {
        guard let items = value as? [[String: Any]] else { throw ReportError("report data: \(path) must be a list of {t, value}") }
        var points: [ChartBlock.Point] = []
        for (index, item) in items.enumerated() {
            guard let text = item["t"] as? String, let time = parseDate(text) else {
                throw ReportError("report data: \(path)[\(index)].t must be an ISO 8601 time")
            }
            // null (no value) is drawn as a gap.
            points.append(ChartBlock.Point(time: time, value: number(item["value"]) ?? .nan))
        }
        return points
    }

    static func number(_ value: Any?) -> Double? {
        switch value {
        case let number as NSNumber: number.doubleValue
        case let text as String: Double(text)  // "NaN", "Infinity" as strings
        default: nil
        }
    }

    static func cellText(_ value: Any) -> String {
        switch value {
        case let number as NSNumber: ValueFormat.grouped(number.doubleValue)
        case let text as String: text
        case is NSNull: ""
        default: "\(value)"
        }
    }

    // Configured once: ISO8601DateFormatter is thread-safe to use, slow to make.
    nonisolated(unsafe) static let fractionalFormatter: ISO8601DateFormatter = {
        let formatter = ISO8601DateFormatter()
        formatter.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
        return formatter
    }()
    nonisolated(unsafe) static let wholeFormatter = ISO8601DateFormatter()

    static func parseDate(_ text: String) -> Date? {
        fractionalFormatter.date(from: text) ?? wholeFormatter.date(from: text)
    }
}
