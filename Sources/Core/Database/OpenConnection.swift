import PostgresNIO

/// The pool kept handing out connections whose channel had already closed.
public struct NoOpenConnection: Error, CustomStringConvertible {
    public let attempts: Int
    public var description: String { "every connection leased in \(attempts) attempts had closed" }
}

/// What one lease gave: a connection that had closed (given back unused), or the body's result.
public enum OpenConnectionLease<Result: Sendable>: Sendable {
    case closed
    case done(Result)
}

extension PostgresClient {
    /// Like `withConnection`, but `body` only gets a connection whose channel is open.
    ///
    /// After the server ends a connection (a restart, `pg_terminate_backend`), the pool
    /// can lease it out before it hears of the close, and a query written to a closed
    /// channel is never answered (vapor/postgres-nio#497). A closed connection is given
    /// back unused and another leased. This narrows the loss, it cannot end it: a channel
    /// that closes after the check loses the query all the same, so callers keep their
    /// deadlines. After a database restart, a claim or the job results waited out a
    /// deadline in 6 of about 29 runs of DatabaseRestartTests without the check, 2 of 29 with
    /// it. (A connection closing while its channel is still open fails its query at once.)
    public func withOpenConnection<Result: Sendable>(
        _ body: (PostgresConnection) async throws -> Result
    ) async throws -> Result {
        try await Self.withOpenConnection(lease: { use in try await self.withConnection(use) }, body)
    }

    /// The loop behind `withOpenConnection`, over any lease (tests hand it closed connections).
    public static func withOpenConnection<Result: Sendable>(
        attempts: Int = 20,
        lease: ((PostgresConnection) async throws -> OpenConnectionLease<Result>) async throws -> OpenConnectionLease<Result>,
        _ body: (PostgresConnection) async throws -> Result
    ) async throws -> Result {
        try await withoutActuallyEscaping(body) { body in
            for _ in 0..<attempts {
                let leased = try await lease { connection in
                    // Asked on the connection's event loop, after whatever it is doing now:
                    // the close of a channel runs there.
                    if try await connection.eventLoop.submit({ connection.isClosed }).get() { return .closed }
                    return .done(try await body(connection))
                }
                if case .done(let result) = leased { return result }
                // A moment for the close to reach the pool, which then stops leasing it.
                try await Task.sleep(for: .milliseconds(1))
            }
            throw NoOpenConnection(attempts: attempts)
        }
    }
}
