import Foundation
import Logging
import PostgresNIO

/// One organization's raw events in [start, end), oldest first, as a row stream (with
/// back-pressure: memory does not grow with the row count). Times are formatted by
/// PostgreSQL, cheaper than a formatter per row. Used by the streaming export route and
/// the export job.
public enum EventExportSource {
    /// id, name, timestamp, received_at, user_id, session_id, properties (JSON text).
    public typealias Row = (String, String, String, String, String?, String?, String)
    public static let columns = ["id", "name", "timestamp", "received_at", "user_id", "session_id", "properties"]

    public static func rows(
        client: PostgresClient, orgID: UUID, start: Date, end: Date, names: [String], logger: Logger
    ) async throws -> AsyncThrowingMapSequence<PostgresRowSequence, Row> {
        try await client.query(
            """
            SELECT id::text, event_name, to_char("timestamp" AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"'),
                   to_char(received_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"'), user_id, session_id, properties::text
            FROM events
            WHERE org_id = \(orgID) AND "timestamp" >= \(start) AND "timestamp" < \(end)
              AND (cardinality(\(names)::text[]) = 0
                   OR (event_name_key(org_id, event_name) = ANY(event_name_keys(\(orgID), \(names)::text[]))
                       AND event_name = ANY(\(names)::text[])))
            ORDER BY "timestamp", id
            """, logger: logger
        ).decode(Row.self)
    }
}
