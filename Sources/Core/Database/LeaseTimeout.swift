import NIOConcurrencyHelpers
import PostgresNIO

/// No connection could be had in time: the database is down or the pool is exhausted.
public struct ConnectionLeaseTimeout: Error, CustomStringConvertible {
    public let waited: Duration
    public var description: String { "no database connection within \(waited)" }
    public init(waited: Duration) { self.waited = waited }
}

private enum LeaseState { case waiting, started, timedOut }

extension PostgresClient {
    /// Like `withConnection`, but gives up when no connection is leased within `timeout`
    /// — postgres-nio otherwise waits until its circuit breaker trips (about a minute),
    /// which is far too long for a request. Once a connection is leased the body runs to
    /// its end: exactly one of "timed out" and "started" wins, so a body that started is
    /// never abandoned half-way and a timed-out one never starts.
    public func withConnection<Result: Sendable>(
        leaseTimeout timeout: Duration, logger: Logger,
        _ body: @escaping @Sendable (PostgresConnection) async throws -> Result
    ) async throws -> Result {
        let state = NIOLockedValueBox(LeaseState.waiting)
        return try await withThrowingTaskGroup(of: Result?.self) { group in
            group.addTask {
                try await self.withOpenConnection { connection in
                    let start = state.withLockedValue { state -> Bool in
                        guard state == .waiting else { return false }
                        state = .started
                        return true
                    }
                    guard start else { throw ConnectionLeaseTimeout(waited: timeout) }
                    return try await body(connection)
                }
            }
            group.addTask {
                try? await Task.sleep(for: timeout)
                let expired = state.withLockedValue { state -> Bool in
                    guard state == .waiting else { return false }
                    state = .timedOut
                    return true
                }
                if expired { throw ConnectionLeaseTimeout(waited: timeout) }
                return nil
            }
            while let result = try await group.next() {
                if let result {
                    group.cancelAll()
                    return result
                }
            }
            throw ConnectionLeaseTimeout(waited: timeout)
        }
    }

    /// `withConnection(leaseTimeout:)` bounded as a whole as well: a query written to a
    /// connection that had just closed is never answered (see `withDeadline`), and a
    /// caller that must answer or loop again cannot wait for it.
    public func withConnection<Result: Sendable>(
        leaseTimeout: Duration, deadline: Duration, logger: Logger,
        _ body: @escaping @Sendable (PostgresConnection) async throws -> Result
    ) async throws -> Result {
        try await withDeadline(deadline) {
            try await self.withConnection(leaseTimeout: leaseTimeout, logger: logger, body)
        }
    }
}
