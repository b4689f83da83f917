import NIOConcurrencyHelpers

/// The operation did not finish in time; it may still be running (it was cancelled,
/// and is abandoned if it ignores that).
public struct DeadlineExceeded: Error, CustomStringConvertible {
    public let timeout: Duration
    public var description: String { "no answer within \(timeout)" }
    public init(timeout: Duration) { self.timeout = timeout }
}

/// Runs `operation`, giving up after `timeout`.
///
/// For database calls that must not wait forever: postgres-nio loses a query written to
/// a pooled connection whose channel closed an instant before (the server restarted), and
/// awaiting it never returns (vapor/postgres-nio#497). A worker whose claim hung that way
/// never claimed again (DatabaseRestartTests). The operation runs in its own task, so an
/// await that ignores cancellation cannot hold the caller — unlike a task group, which
/// waits for every child. Also the job handlers' timeout (`QueueRunner`).
public func withDeadline<T: Sendable>(
    _ timeout: Duration, _ operation: @escaping @Sendable () async throws -> T
) async throws -> T {
    let decided = NIOLockedValueBox(false)
    var tasks: [Task<Void, Never>] = []
    defer { for task in tasks { task.cancel() } }
    return try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<T, any Error>) in
        @Sendable func finish(_ result: Result<T, any Error>) {
            let first = decided.withLockedValue { done -> Bool in
                defer { done = true }
                return !done
            }
            if first { continuation.resume(with: result) }
        }
        tasks.append(Task {
            do {
                finish(.success(try await operation()))
            } catch {
                finish(.failure(error))
            }
        })
        tasks.append(Task {
            do {
                try await Task.sleep(for: timeout)
                finish(.failure(DeadlineExceeded(timeout: timeout)))
            } catch {
                // Cancelled: the operation finished first.
            }
        })
    }
}
