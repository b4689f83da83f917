import Core
import Foundation
import Hummingbird
import Logging
import NIOCore
import PostgresNIO
import Scheduler

/// `POST /api/exports` (202, then a job builds the file), `GET /api/exports/:id` (status)
/// and `GET /api/exports/:id/download` (served by any node: the file is in PostgreSQL).
struct ExportRoutes: Sendable {
    let client: PostgresClient
    static let maximumEventDays = 400.0

    func register(on group: RouterGroup<APIRequestContext>) {
        group.post("exports", use: create)
        group.get("exports", use: list)
        group.get("exports/:id", use: show)
        group.get("exports/:id/download", use: download)
    }

    /// The validated request; stored as the export's `parameters`.
    struct Parameters {
        var kind: Exports.Kind
        var format: Exports.Format
        var start: Date?
        var end: Date?
        var timeZone: String
        var eventNames: [String]
        var metricID: UUID?
        var dashboardID: UUID?
        var granularity: Granularity
        var byteOrderMark: Bool
        var ttlHours: Int

        var json: JSONValue {
            var object: [String: JSONValue] = [
                "tz": .string(timeZone), "event_names": .array(eventNames.map(JSONValue.string)),
                "granularity": .string(granularity.rawValue), "bom": .bool(byteOrderMark),
            ]
            if let start { object["start"] = .string(Timestamps.format(start)) }
            if let end { object["end"] = .string(Timestamps.format(end)) }
            if let metricID { object["metric_id"] = .string(metricID.uuidString.lowercased()) }
            if let dashboardID { object["dashboard_id"] = .string(dashboardID.uuidString.lowercased()) }
            return .object(object)
        }
    }

    static func parse(_ body: JSONValue) throws -> Parameters {
        guard case .object(let fields) = body else { throw AppError(.invalidJSON, "request body must be a JSON object") }
        guard case .string(let kindName)? = fields["kind"], let kind = Exports.Kind(rawValue: kindName) else {
            throw AppError(.invalidField, "'kind' must be events, metric or dashboard")
        }
        guard case .string(let formatName)? = fields["format"], let format = Exports.Format(rawValue: formatName) else {
            throw AppError(.invalidField, "'format' must be csv, json or pdf")
        }
        if kind == .events && format == .pdf {
            throw AppError(.invalidField, "events export as csv or json (newline-delimited); pdf is for metrics and dashboards")
        }
        func instant(_ key: String) throws -> Date? {
            switch fields[key] {
            case nil, .null?: return nil
            case .string(let text)?:
                guard let date = Timestamps.parse(text) else {
                    throw AppError(.invalidField, "'\(key)' must be an ISO 8601 time with an offset")
                }
                return date
            default: throw AppError(.invalidField, "'\(key)' must be an ISO 8601 time with an offset")
            }
        }
        func identifier(_ key: String) throws -> UUID? {
            let filters: [String: JSONValue]
            if case .object(let object)? = fields["filters"] { filters = object } else { filters = [:] }
            switch fields[key] ?? filters[key] {
            case nil, .null?: return nil
            case .string(let text)?:
                guard let id = UUID(uuidString: text) else { throw AppError(.notFound, "no such \(key.dropLast(3))") }
                return id
            default: throw AppError(.invalidField, "'\(key)' must be an id")
            }
        }
        let start = try instant("start"), end = try instant("end")
        if kind != .dashboard {
            guard start != nil, end != nil else { throw AppError(.invalidField, "'start' and 'end' are required") }
        }
        if let start, let end {
            guard start < end else { throw AppError(.invalidField, "'start' must be before 'end'") }
            if kind == .events, end.timeIntervalSince(start) > maximumEventDays * 86400 {
                throw AppError(.invalidField, "an events export covers at most \(Int(maximumEventDays)) days")
            }
        } else if (start == nil) != (end == nil) {
            throw AppError(.invalidField, "give both 'start' and 'end', or neither")
        }
        var timeZone = "UTC"
        if case .string(let zone)? = fields["tz"] {
            guard TimeZone(identifier: zone) != nil else {
                throw AppError(.invalidField, "'tz' must be an IANA time zone such as Europe/Berlin")
            }
            timeZone = zone
        } else if fields["tz"] != nil, fields["tz"] != .null {
            throw AppError(.invalidField, "'tz' must be an IANA time zone such as Europe/Berlin")
        }
        var names: [String] = []
        if case .object(let filters)? = fields["filters"] {
            switch filters["event_names"] {
            case nil, .null?: break
            case .array(let values)? where values.count <= 100:
                for value in values {
                    guard case .string(let name) = value, (1...255).contains(name.count) else {
                        throw AppError(.invalidField, "'filters.event_names' must hold event names")
                    }
                    names.append(name)
                }
            default: throw AppError(.invalidField, "'filters.event_names' must be an array of at most 100 names")
            }
        } else if fields["filters"] != nil, fields["filters"] != .null {
            throw AppError(.invalidField, "'filters' must be an object")
        }
        let metricID = try identifier("metric_id")
        let dashboardID = try identifier("dashboard_id")
        if kind == .metric, metricID == nil { throw AppError(.invalidField, "'metric_id' is required for a metric export") }
        if kind == .dashboard, dashboardID == nil {
            throw AppError(.invalidField, "'dashboard_id' is required for a dashboard export")
        }
        var granularity = Granularity.hour
        if case .string(let name)? = fields["granularity"] {
            guard let value = Granularity(rawValue: name) else {
                throw AppError(.invalidField, "'granularity' must be minute, hour or day")
            }
            granularity = value
        }
        if kind == .metric, let start, let end {
            _ = try RollupReader.boundaries(
                start: start, end: end, granularity: granularity, timeZone: TimeZone(identifier: timeZone)!)
        }
        var ttlHours = 24
        switch fields["ttl_hours"] {
        case nil, .null?: break
        case .number(let value)? where value == value.rounded() && (1...720).contains(value): ttlHours = Int(value)
        default: throw AppError(.invalidField, "'ttl_hours' must be a whole number from 1 to 720")
        }
        var byteOrderMark = false
        if case .bool(let value)? = fields["bom"] { byteOrderMark = value }
        return Parameters(
            kind: kind, format: format, start: start, end: end, timeZone: timeZone, eventNames: names,
            metricID: metricID, dashboardID: dashboardID, granularity: granularity, byteOrderMark: byteOrderMark,
            ttlHours: ttlHours)
    }

    @Sendable func create(_ request: Request, context: APIRequestContext) async throws -> Response {
        let principal = try context.requirePrincipal(.read)
        let parameters = try Self.parse(try JSONBody.parse(try await JSONBody.read(request, limit: 64 * 1024)))
        let id = UUID()
        let logger = context.logger
        try await client.withTransaction(logger: logger) { connection in
            // Another organization's metric or dashboard is not found.
            if let metricID = parameters.metricID {
                let found = try await connection.query(
                    "SELECT 1 FROM metrics WHERE org_id = \(principal.orgID) AND id = \(metricID)", logger: logger
                ).collect()
                guard !found.isEmpty else { throw AppError(.notFound, "no such metric") }
            }
            if let dashboardID = parameters.dashboardID {
                let found = try await connection.query(
                    "SELECT 1 FROM dashboards WHERE org_id = \(principal.orgID) AND id = \(dashboardID)", logger: logger
                ).collect()
                guard !found.isEmpty else { throw AppError(.notFound, "no such dashboard") }
            }
            try await connection.query(
                """
                INSERT INTO exports (org_id, id, kind, format, status, parameters, ttl_seconds)
                VALUES (\(principal.orgID), \(id), \(parameters.kind.rawValue), \(parameters.format.rawValue), 'pending',
                        \(parameters.json.jsonText)::jsonb, \(Int32(parameters.ttlHours * 3600)))
                """, logger: logger)
            // The job exists exactly when the export does.
            let arguments = String(
                decoding: try JSONEncoder().encode(Exports.JobArguments(orgID: principal.orgID, exportID: id)), as: UTF8.self)
            _ = try await JobQueue.enqueueMany(
                [.init(kind: Exports.jobKind, arguments: arguments, options: .init(queue: Exports.queue, maxAttempts: 3, orgID: principal.orgID))],
                on: connection, logger: logger)
        }
        var response = JSONBody.response(
            jsonText: JSONValue.object([
                "id": .string(id.uuidString.lowercased()), "status": .string("pending"),
                "kind": .string(parameters.kind.rawValue), "format": .string(parameters.format.rawValue),
            ]).jsonText, status: .accepted)
        response.headers[.location] = "/api/exports/\(id.uuidString.lowercased())"
        return response
    }

    @Sendable func list(_ request: Request, context: APIRequestContext) async throws -> Response {
        let principal = try context.requirePrincipal(.read)
        let exports = try await fetch(orgID: principal.orgID, id: nil, logger: context.logger)
        return JSONBody.response(jsonText: JSONValue.object(["exports": .array(exports.map(\.json))]).jsonText)
    }

    @Sendable func show(_ request: Request, context: APIRequestContext) async throws -> Response {
        let principal = try context.requirePrincipal(.read)
        guard let export = try await fetch(orgID: principal.orgID, id: try Self.id(context), logger: context.logger).first
        else { throw AppError(.notFound, "no such export") }
        return JSONBody.response(jsonText: export.json.jsonText)
    }

    @Sendable func download(_ request: Request, context: APIRequestContext) async throws -> Response {
        let principal = try context.requirePrincipal(.read)
        let id = try Self.id(context)
        guard let export = try await fetch(orgID: principal.orgID, id: id, logger: context.logger).first else {
            throw AppError(.notFound, "no such export")
        }
        switch export.status {
        case "completed":
            if let expires = export.expiresAt, expires <= Date() { throw AppError(.gone, "the export expired; create it again") }
        case "expired": throw AppError(.gone, "the export expired; create it again")
        case "failed": throw AppError(.conflict, "the export failed: \(export.error ?? "unknown reason")")
        default: throw AppError(.conflict, "the export is \(export.status); poll GET /api/exports/\(export.id)")
        }
        let logger = context.logger
        let client = self.client
        let orgID = principal.orgID
        // Chunk by chunk from the row stream: memory holds about one chunk.
        let rows = try await client.query(
            "SELECT data FROM export_chunks WHERE org_id = \(orgID) AND export_id = \(id) ORDER BY seq", logger: logger)
        let body = ResponseBody { writer in
            for try await chunk in rows.decode(ByteBuffer.self) { try await writer.write(chunk) }
            try await writer.finish(nil)
        }
        var headers: HTTPFields = [
            .contentType: export.contentType ?? "application/octet-stream",
            .contentDisposition: "attachment; filename=\"\(export.filename ?? "export")\"",
        ]
        if let size = export.sizeBytes { headers[.contentLength] = String(size) }
        return Response(status: .ok, headers: headers, body: body)
    }

    static func id(_ context: APIRequestContext) throws -> UUID {
        guard let id = context.parameters.get("id").flatMap(UUID.init(uuidString:)) else {
            throw AppError(.notFound, "no such export")
        }
        return id
    }

    struct ExportInfo {
        let id: String
        let kind: String
        let format: String
        let status: String
        let rowCount: Int64?
        let sizeBytes: Int64?
        let error: String?
        let filename: String?
        let contentType: String?
        let createdAt: Date
        let completedAt: Date?
        let expiresAt: Date?

        var json: JSONValue {
            func date(_ value: Date?) -> JSONValue { value.map { .string(Timestamps.format($0)) } ?? .null }
            func number(_ value: Int64?) -> JSONValue { value.map { .number(Double($0)) } ?? .null }
            return .object([
                "id": .string(id), "kind": .string(kind), "format": .string(format), "status": .string(status),
                "row_count": number(rowCount), "size_bytes": number(sizeBytes), "error": error.map(JSONValue.string) ?? .null,
                "filename": filename.map(JSONValue.string) ?? .null, "created_at": date(createdAt),
                "completed_at": date(completedAt), "expires_at": date(expiresAt),
                "download_url": status == "completed" ? .string("/api/exports/\(id)/download") : .null,
            ])
        }
    }

    func fetch(orgID: UUID, id: UUID?, logger: Logger) async throws -> [ExportInfo] {
        let rows = try await client.query(
            """
            SELECT id, kind, format, status, row_count, size_bytes, error, filename, content_type, created_at,
                   completed_at, expires_at
            FROM exports WHERE org_id = \(orgID) AND (\(id)::uuid IS NULL OR id = \(id))
            ORDER BY created_at DESC LIMIT 100
            """, logger: logger)
        var result: [ExportInfo] = []
        for try await row in rows {
            let (id, kind, format, status, rowCount, size, error, filename, contentType, created, completed, expires) =
                try row.decode((UUID, String, String, String, Int64?, Int64?, String?, String?, String?, Date, Date?, Date?).self)
            result.append(
                ExportInfo(
                    id: id.uuidString.lowercased(), kind: kind, format: format, status: status, rowCount: rowCount,
                    sizeBytes: size, error: error, filename: filename, contentType: contentType, createdAt: created,
                    completedAt: completed, expiresAt: expires))
        }
        return result
    }
}
