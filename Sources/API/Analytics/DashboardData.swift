import Core
import Foundation
import Logging
import PostgresNIO

/// A dashboard widget as stored in `dashboards.config.widgets`.
struct Widget: Sendable, Equatable {
    enum Range: Sendable, Equatable {
        case last(seconds: TimeInterval, name: String)
        case fixed(start: Date, end: Date)

        func resolve(now: Date) -> (Date, Date) {
            switch self {
            case .last(let seconds, _): (now.addingTimeInterval(-seconds), now)
            case .fixed(let start, let end): (start, end)
            }
        }
    }

    static let charts = ["line", "bar", "area", "kpi", "table"]
    static let namedRanges: [String: TimeInterval] = ["last_24h": 86400, "last_7d": 7 * 86400, "last_30d": 30 * 86400]

    var id: String
    var title: String
    var metricID: UUID
    var chart: String
    var range: Range
    var granularity: Granularity

    /// Parses one widget; `index` names it in errors.
    static func parse(_ value: JSONValue, index: Int) throws -> Widget {
        let at = "config.widgets[\(index)]"
        guard case .object(let fields) = value else { throw AppError(.invalidField, "\(at) must be an object") }
        guard case .string(let id)? = fields["id"], (1...64).contains(id.count), !id.utf8.contains(0) else {
            throw AppError(.invalidField, "\(at).id must be a string of 1 to 64 characters")
        }
        var title = ""
        switch fields["title"] {
        case nil, .null?: break
        case .string(let text)? where text.count <= 255 && !text.utf8.contains(0): title = text
        default: throw AppError(.invalidField, "\(at).title must be a string of at most 255 characters")
        }
        guard case .string(let metricText)? = fields["metric_id"], let metricID = UUID(uuidString: metricText) else {
            throw AppError(.invalidField, "\(at).metric_id must be a metric id")
        }
        guard case .string(let chart)? = fields["chart"], charts.contains(chart) else {
            throw AppError(.invalidField, "\(at).chart must be one of \(charts.joined(separator: ", "))")
        }
        let range: Range
        switch fields["range"] {
        case nil, .null?:
            range = .last(seconds: 86400, name: "last_24h")
        case .string(let name)?:
            guard let seconds = namedRanges[name] else {
                throw AppError(.invalidField, "\(at).range must be last_24h, last_7d, last_30d or {\"start\", \"end\"}")
            }
            range = .last(seconds: seconds, name: name)
        case .object(let bounds)?:
            guard case .string(let startText)? = bounds["start"], let start = Timestamps.parse(startText),
                case .string(let endText)? = bounds["end"], let end = Timestamps.parse(endText)
            else {
                throw AppError(.invalidField, "\(at).range.start and .end must be ISO 8601 times with an offset")
            }
            guard start < end else { throw AppError(.invalidField, "\(at).range.start must be before its end") }
            range = .fixed(start: start, end: end)
        default:
            throw AppError(.invalidField, "\(at).range must be last_24h, last_7d, last_30d or {\"start\", \"end\"}")
        }
        var granularity = Granularity.hour
        switch fields["granularity"] {
        case nil, .null?: break
        case .string(let name)?:
            guard let value = Granularity(rawValue: name) else {
                throw AppError(.invalidField, "\(at).granularity must be minute, hour or day")
            }
            granularity = value
        default:
            throw AppError(.invalidField, "\(at).granularity must be minute, hour or day")
        }
        let widget = Widget(id: id, title: title, metricID: metricID, chart: chart, range: range, granularity: granularity)
        // Too many points for the range is a configuration error, caught when saving.
        let (start, end) = range.resolve(now: Date())
        do {
            _ = try RollupReader.boundaries(start: start, end: end, granularity: granularity, timeZone: TimeZone(identifier: "UTC")!)
        } catch let error as AppError {
            throw AppError(.invalidField, "\(at): \(error.message)")
        }
        return widget
    }

    var json: JSONValue {
        let rangeValue: JSONValue
        switch range {
        case .last(_, let name): rangeValue = .string(name)
        case .fixed(let start, let end):
            rangeValue = .object(["start": .string(Timestamps.format(start)), "end": .string(Timestamps.format(end))])
        }
        return .object([
            "id": .string(id), "title": .string(title), "metric_id": .string(metricID.uuidString.lowercased()),
            "chart": .string(chart), "range": rangeValue, "granularity": .string(granularity.rawValue),
        ])
    }
}

/// A dashboard's widgets' current values, from rollups (shared by the HTTP route and the
/// WebSocket pushes).
struct DashboardData: Sendable {
    let client: PostgresClient
    static let parallelRanges = 3

    struct Loaded: Sendable {
        let id: UUID
        let name: String
        let widgets: [Widget]
        var metricIDs: Set<UUID> { Set(widgets.map(\.metricID)) }
    }

    func load(orgID: UUID, id: UUID, logger: Logger) async throws -> Loaded? {
        guard let row = try await client.query(
            "SELECT name, config::text FROM dashboards WHERE org_id = \(orgID) AND id = \(id)", logger: logger
        ).collect().first else { return nil }
        let (name, configText) = try row.decode((String, String).self)
        var widgets: [Widget] = []
        if case .object(let config) = JSONValue.parse(text: configText), case .array(let values)? = config["widgets"] {
            for (index, value) in values.enumerated() {
                // Stored configs were validated on save; a widget that no longer parses is skipped.
                if let widget = try? Widget.parse(value, index: index) { widgets.append(widget) }
            }
        }
        return Loaded(id: id, name: name, widgets: widgets)
    }

    /// `{<leading fields>, "id", "name", "widgets": [{"id", "title", "metric_id", "chart", "total", "points", …}]}`.
    func json(
        orgID: UUID, dashboard: Loaded, leading: [(String, JSONValue)] = [], logger: Logger
    ) async throws -> [UInt8] {
        let reader = RollupReader(client: client)
        let widgets = dashboard.widgets
        let metrics = try await reader.metrics(orgID: orgID, ids: Array(Set(widgets.map(\.metricID))), logger: logger)
        let now = Date()
        // Widgets sharing a range and granularity (most of a dashboard) are read together,
        // a pair of statements per slice of them; slices run side by side, a few at a time.
        struct RangeKey: Hashable {
            let start: Date
            let end: Date
            let granularity: Granularity
        }
        var byRange: [RangeKey: [MetricDefinition]] = [:]
        var keys: [RangeKey?] = []
        for widget in widgets {
            guard let metric = metrics[widget.metricID] else {
                keys.append(nil)
                continue
            }
            let (start, end) = widget.range.resolve(now: now)
            let key = RangeKey(start: start, end: end, granularity: widget.granularity)
            keys.append(key)
            if byRange[key]?.contains(where: { $0.id == metric.id }) != true { byRange[key, default: []].append(metric) }
        }
        let utc = TimeZone(identifier: "UTC")!
        // A range's metrics in a few slices, so that both cores work on a big dashboard
        // (one batch for everything left one core idle); each slice is still one pair of statements.
        var pending: [(RangeKey, [MetricDefinition])] = []
        for (key, metrics) in byRange {
            let size = max(4, (metrics.count + Self.parallelRanges - 1) / Self.parallelRanges)
            for start in stride(from: 0, to: metrics.count, by: size) {
                pending.append((key, Array(metrics[start..<min(start + size, metrics.count)])))
            }
        }
        let series = try await withThrowingTaskGroup(of: (RangeKey, [UUID: MetricSeries]).self) { group in
            var result: [RangeKey: [UUID: MetricSeries]] = [:]
            func add() {
                guard let (key, metrics) = pending.popLast() else { return }
                group.addTask {
                    (key, try await reader.seriesBatch(
                        metrics: metrics, start: key.start, end: key.end, granularity: key.granularity, timeZone: utc,
                        logger: logger))
                }
            }
            for _ in 0..<Self.parallelRanges { add() }
            for try await (key, values) in group {
                result[key, default: [:]].merge(values) { first, _ in first }
                add()
            }
            return result
        }
        var parts: [[UInt8]] = []
        for (widget, key) in zip(widgets, keys) {
            var out: [UInt8] = [UInt8(ascii: "{")]
            for (name, value) in [
                ("id", widget.id), ("title", widget.title), ("metric_id", widget.metricID.uuidString.lowercased()),
                ("chart", widget.chart),
            ] {
                if out.count > 1 { out.append(UInt8(ascii: ",")) }
                JSONValue.writeString(name, to: &out)
                out.append(UInt8(ascii: ":"))
                JSONValue.writeString(value, to: &out)
            }
            if let key, let values = series[key]?[widget.metricID] {
                SeriesJSON.writeFields(values, to: &out)  // continues the object: writes its own commas
            } else {
                out += #","error":{"code":"metric_not_found","message":"the widget's metric no longer exists"}"#.utf8
            }
            out.append(UInt8(ascii: "}"))
            parts.append(out)
        }
        var out: [UInt8] = [UInt8(ascii: "{")]
        for (key, value) in leading + [("id", .string(dashboard.id.uuidString.lowercased())), ("name", .string(dashboard.name))] {
            if out.count > 1 { out.append(UInt8(ascii: ",")) }
            JSONValue.writeString(key, to: &out)
            out.append(UInt8(ascii: ":"))
            value.write(to: &out)
        }
        out += #","widgets":["#.utf8
        for (index, part) in parts.enumerated() {
            if index > 0 { out.append(UInt8(ascii: ",")) }
            out += part
        }
        out += "]}".utf8
        return out
    }
}
