import Foundation
import Logging
import PostgresNIO

/// Queue health in one place: the `jobs stats` command prints it, metrics export it.
public struct JobStats: Sendable, Codable {
    /// queue → state → count.
    public var counts: [String: [String: Int]]
    /// Seconds the oldest runnable job has been due, per queue.
    public var oldestAvailableAgeSeconds: [String: Double]
    /// Failed attempts recorded in the last hour (all queues).
    public var failuresLastHour: Int

    public static func fetch(client: PostgresClient, logger: Logger) async throws -> JobStats {
        var stats = JobStats(counts: [:], oldestAvailableAgeSeconds: [:], failuresLastHour: 0)
        for try await (queue, state, count) in try await client.query(
            "SELECT queue, state, count(*)::int8 FROM jobs GROUP BY queue, state", logger: logger
        ).decode((String, String, Int64).self) {
            stats.counts[queue, default: [:]][state] = Int(count)
        }
        for try await (queue, age) in try await client.query(
            """
            SELECT queue, extract(epoch FROM now() - min(run_at))::float8 FROM jobs
            WHERE state IN ('available', 'scheduled', 'retryable') AND run_at <= now() GROUP BY queue
            """, logger: logger
        ).decode((String, Double).self) {
            stats.oldestAvailableAgeSeconds[queue] = age
        }
        for try await failures in try await client.query(
            """
            SELECT count(*)::int8 FROM jobs, jsonb_array_elements(errors) e
            WHERE attempted_at > now() - interval '1 hour' AND (e->>'at')::timestamptz > now() - interval '1 hour'
            """, logger: logger
        ).decode(Int64.self) {
            stats.failuresLastHour = Int(failures)
        }
        return stats
    }
}
