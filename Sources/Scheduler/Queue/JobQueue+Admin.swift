import Foundation
import Logging
import PostgresNIO

/// A job as stored, for operators.
public struct JobRecord: Sendable, Codable {
    public let id: Int64
    public let kind: String
    public let queue: String
    public let state: String
    public let priority: Int
    public let attempt: Int
    public let maxAttempts: Int
    public let arguments: String
    public let errors: String
    public let uniqueKey: String?
    public let runAt: Date
    public let createdAt: Date
    public let attemptedAt: Date?
    public let attemptedBy: String?
    public let finishedAt: Date?
}

extension JobQueue {
    /// The states a job can be in.
    public static let states = ["available", "scheduled", "running", "retryable", "completed", "discarded", "cancelled"]

    /// Newest first, filtered by any of state, queue and kind.
    public func list(
        state: String? = nil, queue: String? = nil, kind: String? = nil, limit: Int = 50, logger: Logger
    ) async throws -> [JobRecord] {
        if let state, !Self.states.contains(state) {
            throw JobQueueError("unknown state '\(state)': one of \(Self.states.joined(separator: ", "))")
        }
        return try await records(
            """
            WHERE (\(state)::text IS NULL OR state = \(state))
              AND (\(queue)::text IS NULL OR queue = \(queue))
              AND (\(kind)::text IS NULL OR kind = \(kind))
            ORDER BY id DESC LIMIT \(Int32(max(1, min(limit, 10_000))))
            """, logger: logger)
    }

    public func find(id: Int64, logger: Logger) async throws -> JobRecord? {
        try await records("WHERE id = \(id)", logger: logger).first
    }

    /// Cancels a job that has not started. Running and finished jobs are left alone.
    public func cancel(id: Int64, logger: Logger) async throws {
        let rows = try await client.query(
            """
            UPDATE jobs SET state = 'cancelled', finished_at = now()
            WHERE id = \(id) AND state IN ('available', 'scheduled', 'retryable')
            RETURNING id
            """, logger: logger)
        if try await rows.collect().isEmpty {
            guard let job = try await find(id: id, logger: logger) else { throw JobQueueError("no job \(id)") }
            throw JobQueueError("job \(id) is \(job.state); only available, scheduled or retryable jobs can be cancelled")
        }
    }

    /// Makes a job that is not running available now, with at least one attempt left.
    public func retry(id: Int64, logger: Logger) async throws {
        let rows = try await client.query(
            """
            WITH retried AS (
                UPDATE jobs SET state = 'available', run_at = now(), finished_at = NULL,
                    max_attempts = greatest(max_attempts, attempt + 1)
                WHERE id = \(id) AND state <> 'running'
                RETURNING id, queue
            )
            SELECT id, pg_notify(\(Self.notifyChannel), queue) IS NULL FROM retried
            """, logger: logger)
        if try await rows.collect().isEmpty {
            guard try await find(id: id, logger: logger) != nil else { throw JobQueueError("no job \(id)") }
            throw JobQueueError("job \(id) is running; wait for it to finish")
        }
    }

    private func records(_ filter: PostgresQuery, logger: Logger) async throws -> [JobRecord] {
        var query: PostgresQuery = """
            SELECT id, kind, queue, state, priority, attempt, max_attempts, args::text, errors::text, unique_key,
                   run_at, created_at, attempted_at, attempted_by, finished_at
            FROM jobs
            """
        query.sql += " " + filter.sql
        query.binds = filter.binds
        let rows = try await client.query(query, logger: logger)
        var records: [JobRecord] = []
        for try await row in rows {
            let (id, kind, queue, state, priority, attempt, maxAttempts, args, errors, uniqueKey) =
                try row.decode((Int64, String, String, String, Int16, Int32, Int32, String, String, String?).self)
            let columns = row.makeRandomAccess()
            records.append(
                JobRecord(
                    id: id, kind: kind, queue: queue, state: state, priority: Int(priority), attempt: Int(attempt),
                    maxAttempts: Int(maxAttempts), arguments: args, errors: errors, uniqueKey: uniqueKey,
                    runAt: try columns[10].decode(Date.self), createdAt: try columns[11].decode(Date.self),
                    attemptedAt: try columns[12].decode(Date?.self), attemptedBy: try columns[13].decode(String?.self),
                    finishedAt: try columns[14].decode(Date?.self)))
        }
        return records
    }
}
