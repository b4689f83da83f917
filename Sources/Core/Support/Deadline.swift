import NIOConcurrencyHelpers

/// The operation did not finish in time; it may still be running (it was cancelled,
/// and is abandoned if it ignores that).
public struct DeadlineExceeded: Error, CustomStringConvertible {
    public let timeout: Duration
    public var description: String { "no answer within \(timeout)" }
    public init(timeout: Duration) { self.timeout = timeout }
}

/// Runs `operation`, giving up after `timeout`, or at once when the caller is cancelled.
///
/// For database calls that must not wait forever: postgres-nio loses a query written to
/// a pooled connection whose channel closed an instant before (the server restarted), and
/// awaiting it never returns (vapor/postgres-nio#497). A worker whose claim hung that way
/// never claimed again (DatabaseRestartTests). The operation runs in its own task, so an
/// await that ignores cancellation cannot hold the caller — unlike a task group, which
/// waits for every child — nor a service group that is stopping (CancellationError).
/// Also the job handlers' timeout (`QueueRunner`).
public func withDeadline<T: Sendable>(
    _ timeout: Duration, _ operation: @escaping @Sendable () async throws -> T
) async throws -> T {
    let outcome = FirstOutcome<T>()
    let work = Task {
        do {
            outcome.finish(.success(try await operation()))
        } catch {
            outcome.finish(.failure(error))
        }
    }
    let timer = Task {
        do {
            try await Task.sleep(for: timeout)
            outcome.finish(.failure(DeadlineExceeded(timeout: timeout)))
        } catch {
            // Cancelled: decided already.
        }
    }
    defer {
        work.cancel()
        timer.cancel()
    }
    return try await withTaskCancellationHandler {
        try await outcome.value()
    } onCancel: {
        outcome.finish(.failure(CancellationError()))
    }
}

/// The first of: the operation's result, the deadline, the caller's cancellation — which
/// may come before anyone waits.
private final class FirstOutcome<T: Sendable>: Sendable {
    private enum State {
        case pending
        case waiting(CheckedContinuation<T, any Error>)
        case decided(Result<T, any Error>)
        case delivered
    }

    private let state = NIOLockedValueBox(State.pending)

    func finish(_ result: Result<T, any Error>) {
        let waiting = state.withLockedValue { state -> CheckedContinuation<T, any Error>? in
            switch state {
            case .pending:
                state = .decided(result)
                return nil
            case .waiting(let continuation):
                state = .delivered
                return continuation
            case .decided, .delivered:
                return nil
            }
        }
        waiting?.resume(with: result)
    }

    func value() async throws -> T {
        try await withCheckedThrowingContinuation { continuation in
            let decided = state.withLockedValue { state -> Result<T, any Error>? in
                switch state {
                case .pending:
                    state = .waiting(continuation)
                    return nil
                case .decided(let result):
                    state = .delivered
                    return result
                case .waiting, .delivered:
                    preconditionFailure("one caller waits for one outcome")
                }
            }
            if let decided { continuation.resume(with: decided) }
        }
    }
}
