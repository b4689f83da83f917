import Core
import Foundation
import Hummingbird
import Logging
import NIOCore
import PostgresNIO
import Reports

/// `GET /api/events/export?format=csv|ndjson&start=…&end=…[&event=…][&bom=true]`: the
/// organization's raw events, streamed from PostgreSQL's row stream to the client. The
/// row stream has back-pressure, so a slow client slows the query instead of filling
/// memory, and memory does not grow with the number of rows.
struct EventExportRoutes: Sendable {
    let client: PostgresClient
    static let chunkBytes = 64 * 1024
    static let columns = ["id", "name", "timestamp", "received_at", "user_id", "session_id", "properties"]

    func register(on group: RouterGroup<APIRequestContext>) {
        group.get("events/export", use: export)
    }

    enum Format: String { case csv, ndjson }

    @Sendable func export(_ request: Request, context: APIRequestContext) async throws -> Response {
        let principal = try context.requirePrincipal(.read)
        let query = request.uri.queryParameters
        let format = try query["format"].map { raw -> Format in
            guard let format = Format(rawValue: String(raw)) else { throw AppError(.invalidField, "'format' must be csv or ndjson") }
            return format
        } ?? .csv
        guard let start = try EventQueryRoutes.instant(query, "start"), let end = try EventQueryRoutes.instant(query, "end") else {
            throw AppError(.invalidField, "'start' and 'end' are required (ISO 8601 with an offset)")
        }
        guard start < end else { throw AppError(.invalidField, "'start' must be before 'end'") }
        let names = EventQueryRoutes.names(query)
        let byteOrderMark = query["bom"] == "true"
        // Times are formatted by PostgreSQL: cheaper than a Foundation formatter per row.
        let sql: PostgresQuery = """
            SELECT id::text, event_name, to_char("timestamp" AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"'),
                   to_char(received_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"'), user_id, session_id, properties::text
            FROM events
            WHERE org_id = \(principal.orgID) AND "timestamp" >= \(start) AND "timestamp" < \(end)
              AND (cardinality(\(names)::text[]) = 0 OR event_name = ANY(\(names)::text[]))
            ORDER BY "timestamp", id
            """
        // The query starts before the response does: a database that is down is a 503,
        // not a 200 with a truncated body.
        let rows = try await Self.start(sql, on: client, logger: context.logger)
        let logger = context.logger
        let body = ResponseBody { writer in
            do {
                switch format {
                case .csv:
                    var csv = CSVWriter(sink: CSVBuffer(), byteOrderMark: byteOrderMark)
                    csv.writeRow(Self.columns)
                    for try await (id, name, time, received, user, session, properties) in rows {
                        csv.writeRow([id, name, time, received, user ?? "", session ?? "", properties])
                        if csv.sink.bytes.count >= Self.chunkBytes {
                            try await writer.write(ByteBuffer(bytes: csv.withSink { $0.take() }))
                        }
                    }
                    try await writer.write(ByteBuffer(bytes: csv.withSink { $0.take() }))
                case .ndjson:
                    var line: [UInt8] = []
                    for try await (id, name, time, received, user, session, properties) in rows {
                        line += #"{"id":""#.utf8
                        line += id.utf8
                        line += #"","name":"#.utf8
                        JSONValue.writeString(name, to: &line)
                        line += #","timestamp":""#.utf8
                        line += time.utf8
                        line += #"","received_at":""#.utf8
                        line += received.utf8
                        line += #"","user_id":"#.utf8
                        if let user { JSONValue.writeString(user, to: &line) } else { line += "null".utf8 }
                        line += #","session_id":"#.utf8
                        if let session { JSONValue.writeString(session, to: &line) } else { line += "null".utf8 }
                        line += #","properties":"#.utf8
                        line += properties.utf8
                        line += "}\n".utf8
                        if line.count >= Self.chunkBytes {
                            try await writer.write(ByteBuffer(bytes: line))
                            line.removeAll(keepingCapacity: true)
                        }
                    }
                    try await writer.write(ByteBuffer(bytes: line))
                }
            } catch {
                // The status is sent already: the connection is closed without the final
                // chunk, so the client sees a truncated transfer, never a short "complete" file.
                logger.error("export stopped", metadata: ["error": "\(String(reflecting: error))"])
                throw error
            }
            try await writer.finish(nil)
        }
        return Self.response(body: body, format: format, start: start, end: end)
    }

    static func start(_ sql: PostgresQuery, on client: PostgresClient, logger: Logger) async throws
        -> AsyncThrowingMapSequence<PostgresRowSequence, (String, String, String, String, String?, String?, String)>
    {
        do {
            return try await client.query(sql, logger: logger)
                .decode((String, String, String, String, String?, String?, String).self)
        } catch {
            logger.error("cannot start an export", metadata: ["error": "\(String(reflecting: error))"])
            throw AppError(.unavailable, "the event store is unavailable; try again")
        }
    }

    static func response(body: ResponseBody, format: Format, start: Date, end: Date) -> Response {
        let filename = "events-\(Timestamps.format(start).prefix(10))-\(Timestamps.format(end).prefix(10)).\(format.rawValue)"
        return Response(
            status: .ok,
            headers: [
                .contentType: format == .csv ? "text/csv; charset=utf-8" : "application/x-ndjson",
                .contentDisposition: "attachment; filename=\"\(filename)\"",
            ],
            body: body)
    }
}
