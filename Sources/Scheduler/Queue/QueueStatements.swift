import Foundation
import PostgresNIO

/// The hot-path statements, prepared once per connection: the claim runs for every
/// batch and every notification, so parsing and planning it each time is waste.
struct ClaimJobsStatement: PostgresPreparedStatement {
    static let sql = """
        WITH claimable AS (
            SELECT id FROM jobs
            WHERE queue = $1 AND state IN ('available', 'scheduled', 'retryable') AND run_at <= now()
            ORDER BY priority, run_at, id
            LIMIT $2
            FOR UPDATE SKIP LOCKED
        )
        UPDATE jobs j SET state = 'running', attempt = j.attempt + 1, attempted_at = now(),
            attempted_by = $3, lease_expires_at = now() + $4 * interval '1 millisecond'
        FROM claimable WHERE j.id = claimable.id
        RETURNING j.id, j.kind, j.args::text, j.attempt, j.max_attempts, j.timeout_ms, j.created_at, j.unique_key
        """
    typealias Row = (Int64, String, String, Int32, Int32, Int32?, Date, String?)

    var queue: String
    var limit: Int32
    var workerID: String
    var leaseMilliseconds: Int64

    func makeBindings() throws -> PostgresBindings {
        var bindings = PostgresBindings(capacity: 4)
        bindings.append(queue)
        bindings.append(limit)
        bindings.append(workerID)
        bindings.append(leaseMilliseconds)
        return bindings
    }

    func decodeRow(_ row: PostgresRow) throws -> Row {
        try row.decode(Row.self)
    }
}

/// Marks a batch of successful attempts completed. The attempt number guards against
/// writing over a job that was rescued and claimed again elsewhere meanwhile.
struct CompleteJobsStatement: PostgresPreparedStatement {
    static let sql = """
        UPDATE jobs j SET state = 'completed', finished_at = now(), lease_expires_at = NULL
        FROM unnest($1::int8[], $2::int4[]) AS c(id, attempt)
        WHERE j.id = c.id AND j.attempt = c.attempt AND j.state = 'running'
        """
    typealias Row = Void

    var ids: [Int64]
    var attempts: [Int32]

    func makeBindings() throws -> PostgresBindings {
        var bindings = PostgresBindings(capacity: 2)
        bindings.append(ids)
        bindings.append(attempts)
        return bindings
    }

    func decodeRow(_ row: PostgresRow) throws -> Row {}
}
