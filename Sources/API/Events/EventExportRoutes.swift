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

    func register(on group: RouterGroup<APIRequestContext>) {
        group.get("events/export", use: export)
    }

    typealias Format = EventExportEncoder.Format

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
        // The query starts before the response does: a database that is down is a 503,
        // not a 200 with a truncated body.
        let rows: AsyncThrowingMapSequence<PostgresRowSequence, EventExportSource.Row>
        do {
            rows = try await EventExportSource.rows(
                client: client, orgID: principal.orgID, start: start, end: end, names: names, logger: context.logger)
        } catch {
            context.logger.error("cannot start an export", metadata: ["error": "\(String(reflecting: error))"])
            throw AppError(.unavailable, "the event store is unavailable; try again")
        }
        let logger = context.logger
        let body = ResponseBody { writer in
            do {
                var encoder = EventExportEncoder(format: format, byteOrderMark: byteOrderMark)
                for try await row in rows {
                    encoder.append(row)
                    if encoder.pendingBytes >= Self.chunkBytes {
                        try await writer.write(ByteBuffer(bytes: encoder.take()))
                    }
                }
                try await writer.write(ByteBuffer(bytes: encoder.take()))
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
