import Core
import Foundation
import Logging
import NIOConcurrencyHelpers
import PostgresNIO

/// Writes finished attempts back in batches: whatever accumulated while the previous
/// write ran goes out in the next one, so the batch grows with the load by itself.
///
/// A write that fails (database restarting) is kept and tried again; until it lands
/// the job stays `running` and, at worst, its lease expires and it runs once more.
final class Completer: Sendable {
    private let pending = NIOLockedValueBox<[Completion]>([])
    private let signal = WakeupSignal()
    private let stopped = NIOLockedValueBox(false)
    let client: PostgresClient
    let logger: Logger

    init(client: PostgresClient, logger: Logger) {
        self.client = client
        self.logger = logger
    }

    /// Jobs whose result is not yet written: still held by this worker.
    var pendingJobIDs: [Int64] { pending.withLockedValue { $0.map(\.id) } }

    func record(_ completion: Completion) {
        pending.withLockedValue { $0.append(completion) }
        signal.signal()
    }

    /// Stops once everything recorded so far is written (or the database stays down).
    func stop() {
        stopped.withLockedValue { $0 = true }
        signal.signal()
    }

    func run() async {
        var failures = 0
        while true {
            // A moment's wait when few results are in lets a busy queue write them in
            // bulk; an idle one pays a millisecond of bookkeeping delay, not of latency.
            if pending.withLockedValue({ $0.count }) < 64 {
                try? await Task.sleep(for: .milliseconds(1))
            }
            let batch = pending.withLockedValue { pending -> [Completion] in
                let batch = pending
                pending.removeAll(keepingCapacity: true)
                return batch
            }
            if batch.isEmpty {
                if stopped.withLockedValue({ $0 }) { return }
                await signal.wait(timeout: .milliseconds(200))
                continue
            }
            do {
                // Bounded (see withDeadline); the write is idempotent, so a retry is safe.
                // Short: a healthy write takes milliseconds, and one lost on a connection
                // the server had just closed held every result for the whole bound (30 s
                // in 2 of 10 database-restart runs), while the jobs' leases ran out.
                try await withDeadline(.seconds(5)) {
                    try await self.client.withOpenConnection { connection in try await self.write(batch, on: connection) }
                }
                failures = 0
            } catch {
                failures += 1
                logger.warning("cannot record job results; retrying", metadata: ["error": "\(String(reflecting: error))"])
                pending.withLockedValue { $0.insert(contentsOf: batch, at: 0) }
                if stopped.withLockedValue({ $0 }) && failures >= 5 { return }
                try? await Task.sleep(for: .milliseconds(min(200 * failures, 2000)))
            }
        }
    }

    func write(_ batch: [Completion], on connection: PostgresConnection) async throws {
        var doneIDs: [Int64] = [], doneAttempts: [Int32] = []
        var otherIDs: [Int64] = [], otherAttempts: [Int32] = [], kinds: [String] = [], delays: [Int64] = [], reasons: [String] = []
        for completion in batch {
            switch completion.outcome {
            case .success:
                doneIDs.append(completion.id)
                doneAttempts.append(Int32(completion.attempt))
                continue
            case .retry(let after, let reason):
                kinds.append("retry")
                delays.append((after ?? Backoff.delay(afterAttempt: completion.attempt)).milliseconds)
                reasons.append(reason)
            case .snooze(let delay):
                kinds.append("snooze")
                delays.append(delay.milliseconds)
                reasons.append("")
            case .cancel(let reason):
                kinds.append("cancel")
                delays.append(0)
                reasons.append(reason)
            case .discard(let reason):
                kinds.append("discard")
                delays.append(0)
                reasons.append(reason)
            }
            otherIDs.append(completion.id)
            otherAttempts.append(Int32(completion.attempt))
        }
        // As in CompleteJobsStatement, the attempt number must still match.
        if !doneIDs.isEmpty {
            for try await _ in try await connection.execute(
                CompleteJobsStatement(ids: doneIDs, attempts: doneAttempts), logger: logger) {}
        }
        if !otherIDs.isEmpty {
            // Jobs due again at once (a snooze or retry without delay) wake the workers of
            // their queue, as an enqueue does, instead of waiting for their next poll.
            let rows = try await connection.query(
                """
                WITH updated AS (
                UPDATE jobs j SET
                    state = CASE
                        WHEN c.kind = 'retry' AND j.attempt < j.max_attempts THEN 'retryable'
                        WHEN c.kind = 'snooze' THEN 'scheduled'
                        WHEN c.kind = 'cancel' THEN 'cancelled'
                        ELSE 'discarded' END,
                    run_at = CASE WHEN c.kind IN ('retry', 'snooze') THEN now() + c.delay_ms * interval '1 millisecond'
                                  ELSE j.run_at END,
                    attempt = CASE WHEN c.kind = 'snooze' THEN j.attempt - 1 ELSE j.attempt END,
                    errors = CASE WHEN c.reason <> ''
                                  THEN j.errors || jsonb_build_array(jsonb_build_object(
                                      'attempt', j.attempt, 'at', now(), 'error', c.reason))
                                  ELSE j.errors END,
                    finished_at = CASE
                        WHEN c.kind IN ('cancel', 'discard') OR (c.kind = 'retry' AND j.attempt >= j.max_attempts)
                        THEN now() END,
                    lease_expires_at = NULL
                FROM unnest(\(otherIDs)::int8[], \(otherAttempts)::int4[], \(kinds)::text[], \(delays)::int8[], \(reasons)::text[])
                    AS c(id, attempt, kind, delay_ms, reason)
                WHERE j.id = c.id AND j.attempt = c.attempt AND j.state = 'running'
                RETURNING j.queue, j.state, j.run_at
                )
                SELECT pg_notify(\(JobQueue.notifyChannel), queue)
                FROM (SELECT DISTINCT queue FROM updated WHERE state IN ('scheduled', 'retryable') AND run_at <= now()) q
                """, logger: logger)
            for try await _ in rows {}
        }
    }
}
