import Core
import Foundation
import Logging
import PostgresNIO
import Scheduler

/// Deletes the files of expired exports (the export row stays, as `expired`), and marks
/// failed any export whose job is gone — discarded after a worker died on its last
/// attempt, say — so that none stays `pending` or `running` forever.
public struct ExportExpiryJob: JobDefinition {
    public struct Arguments: Codable, Sendable {
        public init() {}
    }

    public static let kind = Exports.expiryJobKind
    public static var defaultQueue: String { "maintenance" }
    /// Bounded like every platform job (see `PartitionUpkeepJob.defaultTimeout`).
    public static var defaultTimeout: Duration? { .seconds(600) }
    let client: PostgresClient

    public init(client: PostgresClient) {
        self.client = client
    }

    public func run(_ arguments: Arguments, context: JobContext) async throws -> JobOutcome {
        try await Self.expire(client: client, logger: context.logger)
        return .success
    }

    @discardableResult
    public static func expire(client: PostgresClient, logger: Logger) async throws -> (expired: Int, lost: Int) {
        let expired = try await client.query(
            """
            WITH gone AS (
                UPDATE exports SET status = 'expired'
                WHERE status = 'completed' AND expires_at <= now()
                RETURNING org_id, id
            ), deleted AS (
                DELETE FROM export_chunks c USING gone g WHERE c.org_id = g.org_id AND c.export_id = g.id
            )
            SELECT count(*)::int FROM gone
            """, logger: logger
        ).collect().first?.decode(Int.self) ?? 0
        let lost = try await client.query(
            """
            UPDATE exports e SET status = 'failed', error = 'the export job stopped before finishing; create it again',
                completed_at = now()
            WHERE e.status IN ('pending', 'running') AND e.created_at < now() - interval '1 minute'
              AND NOT EXISTS (
                SELECT 1 FROM jobs j
                WHERE j.kind = \(Exports.jobKind) AND lower(j.args ->> 'exportID') = e.id::text
                  AND j.state IN ('available', 'scheduled', 'running', 'retryable'))
            RETURNING e.id
            """, logger: logger
        ).collect().count
        return (expired, lost)
    }
}
