import Core
import Logging
import NIOConcurrencyHelpers
import PostgresNIO
import Scheduler

/// Wakes the rollup job after events commit, debounced: at most one enqueue per
/// `delay` per node, however many requests commit meanwhile. The job's unique key makes
/// the enqueue a no-op while one is pending or running; a running one keeps folding while
/// committed rows remain above its watermark, and a cron schedule is the safety net.
public final class RollupWaker: Sendable {
    let client: PostgresClient
    let logger: Logger
    let delay: Duration
    private let scheduled = NIOLockedValueBox(false)

    public init(client: PostgresClient, logger: Logger, delay: Duration = .milliseconds(150)) {
        self.client = client
        self.logger = logger
        self.delay = delay
    }

    /// Called after a commit that stored events.
    public func poke() {
        let start = scheduled.withLockedValue { scheduled -> Bool in
            if scheduled { return false }
            scheduled = true
            return true
        }
        guard start else { return }
        Task {
            try? await Task.sleep(for: delay)
            // Cleared before enqueuing: a commit during the enqueue schedules the next one.
            scheduled.withLockedValue { $0 = false }
            do {
                try await JobQueue(client: client).enqueue(
                    .init(
                        kind: Rollups.jobKind, arguments: "{}",
                        options: .init(queue: "rollups", maxAttempts: 1000, uniqueKey: Rollups.jobUniqueKey)),
                    logger: logger)
            } catch {
                // The cron safety net runs the rollup within seconds anyway.
                logger.warning("cannot wake the rollup job", metadata: ["error": "\(String(reflecting: error))"])
            }
        }
    }
}
