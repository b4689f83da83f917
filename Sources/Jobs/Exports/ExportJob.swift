import Core
import Foundation
import Logging
import NIOCore
import PostgresNIO
import Reports
import Scheduler

/// Builds an export's file into `export_chunks` and marks it completed (or failed, with
/// its reason). Idempotent: a retry after a crash deletes the chunks of the attempt
/// before and starts over; a finished export is left alone.
public struct ExportJob: JobDefinition {
    public typealias Arguments = Exports.JobArguments

    public static let kind = Exports.jobKind
    public static var defaultQueue: String { Exports.queue }
    public static var defaultMaxAttempts: Int { 3 }
    public static var defaultTimeout: Duration? { .seconds(1800) }
    static let chunkBytes = 1 << 20

    let client: PostgresClient
    let templateFolder: String

    public init(client: PostgresClient, templateFolder: String = "templates/reports") {
        self.client = client
        self.templateFolder = templateFolder
    }

    /// A failure that retrying cannot fix (the metric was deleted meanwhile, say).
    struct Refusal: Error {
        let reason: String
    }

    struct Request {
        let kind: Exports.Kind
        let format: Exports.Format
        let parameters: [String: Any]

        func date(_ key: String) -> Date? {
            (parameters[key] as? String).flatMap { ISO8601DateFormatter.fractional.date(from: $0) }
        }
        func id(_ key: String) -> UUID? { (parameters[key] as? String).flatMap(UUID.init(uuidString:)) }
        var timeZone: TimeZone { (parameters["tz"] as? String).flatMap(TimeZone.init(identifier:)) ?? TimeZone(identifier: "UTC")! }
        var granularity: Granularity { (parameters["granularity"] as? String).flatMap(Granularity.init(rawValue:)) ?? .hour }
    }

    public func run(_ arguments: Arguments, context: JobContext) async throws -> JobOutcome {
        try await perform(arguments, attempt: context.attempt, maxAttempts: context.maxAttempts, logger: context.logger)
    }

    /// The job's work, callable without a queue (tests, tools).
    public func perform(_ arguments: Arguments, attempt: Int = 1, maxAttempts: Int = 1, logger: Logger) async throws -> JobOutcome {
        guard let row = try await client.query(
            """
            UPDATE exports SET status = 'running', started_at = now(), attempts = attempts + 1, error = NULL
            WHERE org_id = \(arguments.orgID) AND id = \(arguments.exportID) AND status IN ('pending', 'running')
            RETURNING kind, format, parameters::text
            """, logger: logger
        ).collect().first else { return .success }  // finished already, or gone
        let (kindName, formatName, parametersText) = try row.decode((String, String, String).self)
        guard let kind = Exports.Kind(rawValue: kindName), let format = Exports.Format(rawValue: formatName) else {
            try await fail(arguments, reason: "unknown kind or format", logger: logger)
            return .discard(reason: "unknown kind or format")
        }
        let parameters = (try? JSONSerialization.jsonObject(with: Data(parametersText.utf8)) as? [String: Any]) ?? [:]
        let request = Request(kind: kind, format: format, parameters: parameters)
        try await client.query(
            "DELETE FROM export_chunks WHERE org_id = \(arguments.orgID) AND export_id = \(arguments.exportID)", logger: logger)
        do {
            var sink = ChunkSink(client: client, orgID: arguments.orgID, exportID: arguments.exportID, logger: logger)
            let rows: Int
            switch kind {
            case .events: rows = try await events(arguments, request, into: &sink, logger: logger)
            case .metric: rows = try await metric(arguments, request, into: &sink, logger: logger)
            case .dashboard: rows = try await dashboard(arguments, request, into: &sink, logger: logger)
            }
            try await sink.flush()
            let filename = "\(kind.rawValue)-\(arguments.exportID.uuidString.lowercased().prefix(8)).\(format == .json && kind == .events ? "ndjson" : format.rawValue)"
            try await client.query(
                """
                UPDATE exports SET status = 'completed', row_count = \(Int64(rows)), size_bytes = \(Int64(sink.size)),
                    filename = \(filename), content_type = \(Exports.contentType(kind: kind, format: format)),
                    completed_at = now(), expires_at = now() + ttl_seconds * interval '1 second'
                WHERE org_id = \(arguments.orgID) AND id = \(arguments.exportID)
                """, logger: logger)
            return .success
        } catch let refusal as Refusal {
            try await fail(arguments, reason: refusal.reason, logger: logger)
            return .discard(reason: refusal.reason)
        } catch let error as ReportError {
            try await fail(arguments, reason: error.message, logger: logger)
            return .discard(reason: error.message)
        } catch {
            // Transient (the database went away, say): retried with backoff; the last
            // attempt records the failure so the export never stays "running".
            if attempt >= maxAttempts {
                try? await fail(arguments, reason: "the export could not be built; create it again", logger: logger)
            }
            throw error
        }
    }

    func fail(_ arguments: Arguments, reason: String, logger: Logger) async throws {
        try await client.query(
            """
            UPDATE exports SET status = 'failed', error = \(reason), completed_at = now()
            WHERE org_id = \(arguments.orgID) AND id = \(arguments.exportID)
            """, logger: logger)
        try await client.query(
            "DELETE FROM export_chunks WHERE org_id = \(arguments.orgID) AND export_id = \(arguments.exportID)", logger: logger)
    }

    // MARK: Kinds

    func events(_ arguments: Arguments, _ request: Request, into sink: inout ChunkSink, logger: Logger) async throws -> Int {
        guard let start = request.date("start"), let end = request.date("end") else { throw Refusal(reason: "no range") }
        let names = request.parameters["event_names"] as? [String] ?? []
        var encoder = EventExportEncoder(
            format: request.format == .csv ? .csv : .ndjson, byteOrderMark: request.parameters["bom"] as? Bool ?? false)
        let rows = try await EventExportSource.rows(
            client: client, orgID: arguments.orgID, start: start, end: end, names: names, logger: logger)
        for try await row in rows {
            encoder.append(row)
            if encoder.pendingBytes >= Self.chunkBytes { try await sink.write(encoder.take()) }
        }
        try await sink.write(encoder.take())
        return encoder.rows
    }

    func metric(_ arguments: Arguments, _ request: Request, into sink: inout ChunkSink, logger: Logger) async throws -> Int {
        let reader = RollupReader(client: client)
        guard let id = request.id("metric_id"), let metric = try await reader.metric(orgID: arguments.orgID, id: id, logger: logger)
        else { throw Refusal(reason: "the metric no longer exists") }
        guard let start = request.date("start"), let end = request.date("end") else { throw Refusal(reason: "no range") }
        let series = try await reader.series(
            metric: metric, start: start, end: end, granularity: request.granularity, timeZone: request.timeZone,
            logger: logger)
        switch request.format {
        case .json:
            try await sink.write(SeriesJSON.object(series))
        case .csv:
            var csv = CSVWriter(sink: CSVBuffer(), byteOrderMark: request.parameters["bom"] as? Bool ?? false)
            writeCSV(series, widget: nil, to: &csv)
            try await sink.write(csv.withSink { $0.take() })
        case .pdf:
            let key = metric.id.uuidString
            var data = try await reportData(orgID: arguments.orgID, period: ReportPeriod(start: series.start, end: series.end), request, logger: logger)
            data.metrics[key] = Self.reportMetric(series)
            data.widgets = [
                .init(title: metric.name, chart: "kpi", metric: key), .init(title: metric.name, chart: "line", metric: key),
                .init(title: metric.name, chart: "table", metric: key),
            ]
            try await sink.write(try render(data))
        }
        return series.points.count
    }

    func dashboard(_ arguments: Arguments, _ request: Request, into sink: inout ChunkSink, logger: Logger) async throws -> Int {
        guard let id = request.id("dashboard_id"), let row = try await client.query(
            "SELECT name, config::text FROM dashboards WHERE org_id = \(arguments.orgID) AND id = \(id)", logger: logger
        ).collect().first else { throw Refusal(reason: "the dashboard no longer exists") }
        let (name, configText) = try row.decode((String, String).self)
        let config = (try? JSONSerialization.jsonObject(with: Data(configText.utf8)) as? [String: Any]) ?? [:]
        let widgets = config["widgets"] as? [[String: Any]] ?? []
        let reader = RollupReader(client: client)
        let ids = widgets.compactMap { ($0["metric_id"] as? String).flatMap(UUID.init(uuidString:)) }
        let metrics = try await reader.metrics(orgID: arguments.orgID, ids: ids, logger: logger)
        let now = Date()
        var series: [(widget: [String: Any], series: MetricSeries)] = []
        for widget in widgets {
            guard let metricID = (widget["metric_id"] as? String).flatMap(UUID.init(uuidString:)),
                let metric = metrics[metricID]
            else { continue }  // a deleted metric's widget is left out
            let (start, end) = Self.range(widget, request: request, now: now)
            let granularity = (widget["granularity"] as? String).flatMap(Granularity.init(rawValue:)) ?? .hour
            series.append((
                widget,
                try await reader.series(
                    metric: metric, start: start, end: end, granularity: granularity, timeZone: request.timeZone,
                    logger: logger)
            ))
        }
        switch request.format {
        case .json:
            var out: [UInt8] = [UInt8(ascii: "{")]
            out += #""id":"#.utf8
            JSONString.append(id.uuidString.lowercased(), to: &out)
            out += #","name":"#.utf8
            JSONString.append(name, to: &out)
            out += #","widgets":["#.utf8
            for (index, entry) in series.enumerated() {
                if index > 0 { out.append(UInt8(ascii: ",")) }
                out += #"{"id":"#.utf8
                JSONString.append(entry.widget["id"] as? String ?? "", to: &out)
                SeriesJSON.writeFields(entry.series, to: &out)
                out.append(UInt8(ascii: "}"))
            }
            out += "]}".utf8
            try await sink.write(out)
        case .csv:
            var csv = CSVWriter(sink: CSVBuffer(), byteOrderMark: request.parameters["bom"] as? Bool ?? false)
            for entry in series { writeCSV(entry.series, widget: entry.widget["id"] as? String ?? "", to: &csv) }
            try await sink.write(csv.withSink { $0.take() })
        case .pdf:
            let starts = series.map(\.series.start), ends = series.map(\.series.end)
            let period = starts.min().flatMap { start in ends.max().map { ReportPeriod(start: start, end: $0) } }
            var data = try await reportData(orgID: arguments.orgID, period: period, request, logger: logger)
            for (index, entry) in series.enumerated() {
                let key = "w\(index)"
                data.metrics[key] = Self.reportMetric(entry.series)
                data.widgets.append(
                    .init(title: entry.widget["title"] as? String, chart: entry.widget["chart"] as? String ?? "line", metric: key))
            }
            try await sink.write(try render(data))
        }
        return series.reduce(0) { $0 + $1.series.points.count }
    }

    /// A widget's range: the export's own when it names one, else the widget's.
    static func range(_ widget: [String: Any], request: Request, now: Date) -> (Date, Date) {
        if let start = request.date("start"), let end = request.date("end") { return (start, end) }
        if let bounds = widget["range"] as? [String: Any], let start = (bounds["start"] as? String).flatMap(ISO8601DateFormatter.fractional.date),
            let end = (bounds["end"] as? String).flatMap(ISO8601DateFormatter.fractional.date)
        {
            return (start, end)
        }
        let named: [String: Double] = ["last_7d": 7, "last_30d": 30]
        let days: Double = named[widget["range"] as? String ?? ""] ?? 1
        return (now.addingTimeInterval(-days * 86400), now)
    }

    /// Long format: one line per bucket, with a column per group ("other" last).
    func writeCSV(_ series: MetricSeries, widget: String?, to csv: inout CSVWriter<CSVBuffer>) {
        let groups = series.groups
        var header = widget == nil ? [] : ["widget", "metric"]
        header += ["t", "value"] + groups.map(\.name)
        csv.writeRow(header)
        let formatter = ISO8601DateFormatter()
        formatter.timeZone = series.granularity == .day ? series.timeZone : TimeZone(identifier: "UTC")!
        for (index, point) in series.points.enumerated() {
            var row = widget.map { [$0, series.metric.name] } ?? []
            row.append(formatter.string(from: point.t))
            row.append(point.value.map { Self.plain($0) } ?? "")
            for group in groups {
                row.append(group.points.indices.contains(index) ? group.points[index].value.map { Self.plain($0) } ?? "" : "")
            }
            csv.writeRow(row)
        }
    }

    /// Numbers as a spreadsheet reads them: integers without a fraction.
    static func plain(_ value: Double) -> String {
        value == value.rounded() && abs(value) < 1e15 ? String(Int64(value)) : String(value)
    }

    static func reportMetric(_ series: MetricSeries) -> ReportData.Metric {
        func points(_ points: [MetricSeries.Point]) -> [ChartBlock.Point] {
            points.compactMap { point in point.value.map { ChartBlock.Point(time: point.t, value: $0) } }
        }
        return ReportData.Metric(
            name: series.metric.name, total: series.total, points: points(series.points),
            groups: series.groups.map { ReportData.Group(name: $0.name, points: points($0.points)) })
    }

    /// Branding from the organization (`custom_branding`), falling back to its name.
    func reportData(orgID: UUID, period: ReportPeriod?, _ request: Request, logger: Logger) async throws -> ReportData {
        let row = try await client.query(
            "SELECT name, custom_branding::text FROM organizations WHERE id = \(orgID)", logger: logger
        ).collect().first
        var branding = Branding.neutral
        if let (name, brandingText) = try row?.decode((String, String?).self) {
            if let brandingText, let json = try? JSONSerialization.jsonObject(with: Data(brandingText.utf8)) as? [String: Any] {
                branding = (try? Branding(json: json)) ?? .neutral
            }
            if branding.companyName == nil { branding.companyName = name }
        }
        return ReportData(branding: branding, timeZone: request.timeZone, period: period, generatedAt: Date())
    }

    func render(_ data: ReportData) throws -> [UInt8] {
        let template = (try? ReportTemplate.named("dashboard", folder: templateFolder)) ?? ReportTemplate.builtinDashboard
        return try PDFRenderer.render(try template.document(with: data)).bytes
    }
}

/// Appends the file to `export_chunks` about a MiB at a time.
struct ChunkSink {
    let client: PostgresClient
    let orgID: UUID
    let exportID: UUID
    let logger: Logger
    private var pending: [UInt8] = []
    private var sequence: Int32 = 0
    private(set) var size = 0

    init(client: PostgresClient, orgID: UUID, exportID: UUID, logger: Logger) {
        self.client = client
        self.orgID = orgID
        self.exportID = exportID
        self.logger = logger
    }

    mutating func write(_ bytes: [UInt8]) async throws {
        pending += bytes
        size += bytes.count
        if pending.count >= ExportJob.chunkBytes { try await flush() }
    }

    mutating func flush() async throws {
        guard !pending.isEmpty else { return }
        try await client.query(
            """
            INSERT INTO export_chunks (org_id, export_id, seq, data)
            VALUES (\(orgID), \(exportID), \(sequence), \(ByteBuffer(bytes: pending)))
            """, logger: logger)
        sequence += 1
        pending.removeAll(keepingCapacity: true)
    }
}

extension ISO8601DateFormatter {
    /// Parses with or without fractional seconds (the API stores fractional ones).
    nonisolated(unsafe) static let fractional: ISO8601DateFormatter = {
        let formatter = ISO8601DateFormatter()
        formatter.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
        return formatter
    }()
}
