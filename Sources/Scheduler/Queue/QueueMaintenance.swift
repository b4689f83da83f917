import Logging
import PostgresNIO

/// Lease renewal, rescue and pruning: the statements that keep the queue healthy.
/// Safe to run from any number of processes at once.
public struct QueueMaintenance: Sendable {
    let client: PostgresClient
    let logger: Logger

    public init(client: PostgresClient, logger: Logger) {
        self.client = client
        self.logger = logger
    }

    func renewLeases(ids: [Int64], workerID: String, lease: Duration) async throws {
        guard !ids.isEmpty else { return }
        // SKIP LOCKED: rows being completed right now need no renewal, and waiting on
        // them in another order than the completer's batch would risk a deadlock.
        try await client.query(
            """
            UPDATE jobs SET lease_expires_at = now() + \(lease.milliseconds) * interval '1 millisecond'
            WHERE id IN (
                SELECT id FROM jobs
                WHERE id = ANY(\(ids)::int8[]) AND state = 'running' AND attempted_by = \(workerID)
                FOR UPDATE SKIP LOCKED)
            """, logger: logger)
    }

    /// Jobs whose lease expired (their worker died or hung) go back to `retryable` with
    /// the loss recorded as a failed attempt, or to `discarded` when none are left.
    /// - Returns: how many jobs were rescued.
    @discardableResult
    public func rescueExpiredLeases() async throws -> Int {
        let rows = try await client.query(
            """
            WITH expired AS (
                SELECT id FROM jobs WHERE state = 'running' AND lease_expires_at < now()
                ORDER BY lease_expires_at LIMIT 1000
                FOR UPDATE SKIP LOCKED
            ), rescued AS (
                UPDATE jobs j SET
                    state = CASE WHEN j.attempt >= j.max_attempts THEN 'discarded' ELSE 'retryable' END,
                    run_at = now(),
                    finished_at = CASE WHEN j.attempt >= j.max_attempts THEN now() END,
                    errors = j.errors || jsonb_build_array(jsonb_build_object(
                        'attempt', j.attempt, 'at', now(),
                        'error', 'lease expired: worker ' || coalesce(j.attempted_by, '?') || ' stopped renewing it')),
                    lease_expires_at = NULL
                FROM expired WHERE j.id = expired.id
                RETURNING j.queue, j.state
            ), woken AS (
                SELECT pg_notify(\(JobQueue.notifyChannel), queue)
                FROM (SELECT DISTINCT queue FROM rescued WHERE state = 'retryable') q
            )
            SELECT (SELECT count(*) FROM rescued)::int8, (SELECT count(*) FROM woken)::int8
            """, logger: logger)
        for try await (rescued, _) in rows.decode((Int64, Int64).self) { return Int(rescued) }
        return 0
    }

    /// Deletes completed, discarded and cancelled jobs finished longer than `age` ago,
    /// in slices so no statement holds locks for long.
    /// - Returns: how many were deleted.
    @discardableResult
    public func prune(olderThan age: Duration) async throws -> Int {
        var total = 0
        while true {
            let rows = try await client.query(
                """
                WITH doomed AS (
                    SELECT id FROM jobs
                    WHERE state IN ('completed', 'discarded', 'cancelled')
                      AND finished_at < now() - \(age.milliseconds) * interval '1 millisecond'
                    LIMIT 10000
                ), deleted AS (
                    DELETE FROM jobs WHERE id IN (SELECT id FROM doomed) RETURNING 1
                )
                SELECT count(*)::int8 FROM deleted
                """, logger: logger)
            var deleted = 0
            for try await count in rows.decode(Int64.self) { deleted = Int(count) }
            total += deleted
            if deleted < 10000 { return total }
        }
    }
}
