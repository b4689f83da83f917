import Core
import Foundation
import Logging
import NIOConcurrencyHelpers
import PostgresNIO
import TestSupport
import Testing

@Suite struct OpenConnectionTests {
    /// A real connection to the test database, already closed.
    static func closedConnection(_ url: DatabaseURL) async throws -> PostgresConnection {
        let connection = try await PostgresConnection.connect(
            configuration: url.connectionConfiguration, id: 1, logger: Logger(label: "test"))
        try await connection.close()
        return connection
    }

    /// What a pool that has not yet heard of a close hands out: connections whose channel
    /// closed. They are given back unused, and the body runs once, on an open one.
    @Test func closedConnectionsAreSkippedAndTheBodyRunsOnAnOpenOne() async throws {
        try await withTestDatabase { client, url in
            let logger = Logger(label: "test")
            let closed = try await Self.closedConnection(url)
            #expect(closed.isClosed)
            let leases = NIOLockedValueBox(0)
            let seen = NIOLockedValueBox<[Bool]>([])
            let answer: Int? = try await PostgresClient.withOpenConnection(
                lease: { (use: (PostgresConnection) async throws -> OpenConnectionLease<Int?>) in
                    let lease = leases.withLockedValue { $0 += 1; return $0 }
                    if lease <= 2 { return try await use(closed) }
                    return try await client.withConnection(use)
                },
                { (connection: PostgresConnection) -> Int? in
                    seen.withLockedValue { $0.append(connection.isClosed) }
                    // Bounded: on a closed connection this query would never be answered.
                    return try await withDeadline(.seconds(5)) {
                        try await connection.query("SELECT 42", logger: logger).collect().first?.decode(Int.self)
                    }
                })
            #expect(answer == 42)
            #expect(leases.withLockedValue { $0 } == 3)
            #expect(seen.withLockedValue { $0 } == [false])
        }
    }

    /// A pool that only ever hands out closed connections: a clear error after a bounded
    /// number of leases, never the body on a closed channel (whose query would never be answered).
    @Test func onlyClosedConnectionsEndInAnError() async throws {
        try await withTestDatabase { _, url in
            let closed = try await Self.closedConnection(url)
            let ran = NIOLockedValueBox(false)
            let error = await #expect(throws: NoOpenConnection.self) {
                try await PostgresClient.withOpenConnection(
                    attempts: 5, lease: { (use: (PostgresConnection) async throws -> OpenConnectionLease<Int>) in try await use(closed) }
                ) { (_: PostgresConnection) -> Int in
                    ran.withLockedValue { $0 = true }
                    return 0
                }
            }
            #expect(error?.attempts == 5)
            #expect(ran.withLockedValue { $0 } == false)
        }
    }

    /// Through the pool, with the server ending a connection mid-query as a restart or
    /// `pg_terminate_backend` does: calls right after it still succeed or fail at once
    /// (a connection still closing refuses its query), and none hangs.
    @Test func callsAfterAKilledConnectionNeverHang() async throws {
        try await withTestDatabase { client, _ in
            let logger = Logger(label: "test")
            for round in 0..<10 {
                let tag = "victim-\(round)"
                async let victim: Void = {
                    _ = try? await client.withOpenConnection { connection in
                        try await connection.query("SELECT pg_sleep(10), \(tag)", logger: logger).collect()
                    }
                }()
                var killed = 0
                for _ in 0..<250 where killed == 0 {
                    try await Task.sleep(for: .milliseconds(20))
                    killed = (try? await client.withOpenConnection { connection in
                        try await connection.query(
                            """
                            SELECT count(pg_terminate_backend(pid))::int FROM pg_stat_activity
                            WHERE query LIKE '%pg_sleep(10)%' AND pid <> pg_backend_pid()
                            """, logger: logger
                        ).collect().first?.decode(Int.self) ?? 0
                    }) ?? 0
                }
                #expect(killed == 1)
                await victim
                let started = ContinuousClock.now
                for _ in 0..<3 {
                    _ = try? await withDeadline(.seconds(5)) {
                        try await client.withOpenConnection { connection in
                            try await connection.query("SELECT 1", logger: logger).collect().count
                        }
                    }
                }
                #expect(ContinuousClock.now - started < .seconds(4), "round \(round)")
            }
        }
    }
}
