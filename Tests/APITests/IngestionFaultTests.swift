@testable import API
import Core
import Foundation
import Hummingbird
import HummingbirdTesting
import Logging
import NIOConcurrencyHelpers
import NIOCore
import PostgresNIO
import TestSupport
import Testing

@Suite struct IngestionFaultTests {
    static func event(_ name: String, id: UUID? = nil) -> ValidEvent {
        ValidEvent(
            id: id ?? UUID(), clientSuppliedID: id != nil, name: name, properties: #"{"n":1}"#, userID: "u", sessionID: nil,
            timestamp: Date())
    }

    /// 64 clients posting 3 requests each at once: per client, the events accepted and
    /// the requests refused for quota.
    static func postFromManyClients(
        _ ingestor: EventIngestor, orgID: UUID,
        events: @escaping @Sendable (_ client: Int, _ round: Int) -> [ValidEvent]
    ) async throws -> [(accepted: Int, refused: Int)] {
        try await withThrowingTaskGroup(of: (accepted: Int, refused: Int).self) { group in
            for client in 0..<64 {
                group.addTask {
                    var accepted = 0, refused = 0
                    for round in 0..<3 {
                        do {
                            let outcome = try await ingestor.ingest(
                                orgID: orgID, events: events(client, round), ipAddress: "10.0.0.1", userAgent: "t")
                            accepted += outcome.accepted
                        } catch is QuotaExceeded {
                            refused += 1
                        }
                    }
                    return (accepted, refused)
                }
            }
            return try await group.reduce(into: [(accepted: Int, refused: Int)]()) { $0.append($1) }
        }
    }

    /// Parallel transactions per organization (the optimistic path: insert, then lock to
    /// count) with client ids shared between racing requests and a limit that is hit:
    /// usage equals stored rows, the limit holds, each id is stored once, and no id is
    /// claimed without its event.
    @Test func parallelWritersKeepQuotaAndIdsExact() async throws {
        try await withTestDatabase { client, _ in
            let fixture = try await IngestionFixture.make(client, tier: .custom, limit: 2000)
            let ingestor = EventIngestor(
                client: client, logger: Logger(label: "test"), maximumBatchEvents: 200, maximumFlushers: 4,
                parallelThreshold: 1)
            let shared = (0..<40).map { _ in UUID() }
            let outcomes = try await Self.postFromManyClients(ingestor, orgID: fixture.orgID) { client, round in
                // 20 events: 5 with ids shared by every client, 15 fresh.
                (0..<15).map { _ in Self.event("p") }
                    + (0..<5).map { Self.event("p", id: shared[(client + round * 5 + $0) % shared.count]) }
            }
            let accepted = outcomes.reduce(0) { $0 + $1.accepted }
            #expect(outcomes.contains { $0.refused > 0 })
            let stored = try await fixture.count("SELECT count(*)::int FROM events")
            #expect(stored == accepted)
            #expect(try await fixture.count("SELECT events_used_this_month::int FROM organizations WHERE id = \(fixture.orgID)") == stored)
            #expect(stored <= 2000 && stored > 2000 - 20)
            #expect(try await fixture.count("SELECT count(*)::int FROM (SELECT id FROM events GROUP BY id HAVING count(*) > 1) d") == 0)
            let orphans = try await fixture.count(
                "SELECT count(*)::int FROM event_ids i WHERE NOT EXISTS (SELECT 1 FROM events e WHERE e.id = i.id)")
            #expect(orphans == 0)
            let sharedStored = try await fixture.count("SELECT count(*)::int FROM events WHERE id = ANY(\(shared))")
            #expect(sharedStored <= shared.count)
        }
    }

    /// Calls of 1,000 events and more take turns on the organization's insert lock
    /// (migration 0014), beside the optimistic path and the locked one near the limit:
    /// the limit holds and usage equals stored rows.
    @Test func largeCallsTakingTurnsKeepQuotaExact() async throws {
        try await withTestDatabase { client, _ in
            let fixture = try await IngestionFixture.make(client, tier: .custom, limit: 15_000)
            let ingestor = EventIngestor(
                client: client, logger: Logger(label: "test"), maximumBatchEvents: 2000, maximumFlushers: 3,
                parallelThreshold: 1)
            let outcomes = try await Self.postFromManyClients(ingestor, orgID: fixture.orgID) { _, _ in
                (0..<100).map { _ in Self.event("large") }
            }
            let accepted = outcomes.reduce(0) { $0 + $1.accepted }
            let stored = try await fixture.count("SELECT count(*)::int FROM events")
            #expect(stored == accepted)
            #expect(stored <= 15_000 && stored > 15_000 - 100)
            #expect(try await fixture.count("SELECT events_used_this_month::int FROM organizations WHERE id = \(fixture.orgID)") == stored)
            // Some calls were large enough to take the lock.
            #expect(try await fixture.count("SELECT max(n)::int FROM (SELECT count(*) AS n FROM events GROUP BY ingest_xid) c") >= 1000)
        }
    }

    /// While another flusher runs, one that finishes leaves a batch under the threshold
    /// to grow instead of committing it alone: the last flusher takes it, with whatever
    /// arrived meanwhile. Each call is held on an event key an open transaction has
    /// stored, so the two flushers finish when the test says.
    @Test func onlyTheLastFlusherTakesASmallBatch() async throws {
        try await withTestDatabase { client, _ in
            let fixture = try await IngestionFixture.make(client, tier: .custom, limit: 1_000_000)
            let logger = Logger(label: "test")
            let ingestor = EventIngestor(
                client: client, logger: logger, maximumBatchEvents: 200, maximumFlushers: 2, parallelThreshold: 200)
            let time = Date(timeIntervalSince1970: Double(Int(Date().timeIntervalSince1970)))
            let firstKey = UUID(), secondKey = UUID()
            func events(_ name: String, heldOn key: UUID? = nil) -> [ValidEvent] {
                var events = (0..<100).map { _ in Self.event(name) }
                if let key {
                    events[0] = ValidEvent(
                        id: key, clientSuppliedID: false, name: name, properties: "{}", userID: nil, sessionID: nil,
                        timestamp: time)
                }
                return events
            }
            func post(_ events: [ValidEvent], done: NIOLockedValueBox<Bool>? = nil) -> Task<EventIngestor.Outcome, any Error> {
                Task {
                    let outcome = try await ingestor.ingest(orgID: fixture.orgID, events: events, ipAddress: nil, userAgent: nil)
                    done?.withLockedValue { $0 = true }
                    return outcome
                }
            }
            func waitForBlockedCalls(_ expected: Int) async throws {
                for _ in 0..<200 {
                    let blocked = try await client.scalar(
                        """
                        SELECT count(*)::int FROM pg_stat_activity
                        WHERE datname = current_database() AND query LIKE '%ingest_events(%' AND wait_event_type = 'Lock'
                          AND pid <> pg_backend_pid()
                        """, as: Int.self)
                    if blocked == expected { return }
                    try await Task.sleep(for: .milliseconds(20))
                }
                Issue.record("\(expected) ingestion calls never waited on their held keys")
            }
            try await client.withConnection { firstHolder in
                try await client.withConnection { secondHolder in
                    for (holder, key) in [(firstHolder, firstKey), (secondHolder, secondKey)] {
                        try await holder.query("BEGIN", logger: logger)
                        try await holder.query(
                            """
                            INSERT INTO events (org_id, id, event_name, "timestamp")
                            VALUES (\(fixture.orgID), \(key), 'held', \(time))
                            """, logger: logger)
                    }
                    // Flusher A writes r1 and waits on the first key.
                    let first = post(events("r1", heldOn: firstKey))
                    try await waitForBlockedCalls(1)
                    // 200 events wait: flusher B starts, writes r2 and r3, and waits on the second key.
                    let second = post(events("r2", heldOn: secondKey))
                    let third = post(events("r3"))
                    try await waitForBlockedCalls(2)
                    let fourthDone = NIOLockedValueBox(false)
                    let fourth = post(events("r4"), done: fourthDone)
                    try await Task.sleep(for: .milliseconds(200))

                    // A finishes while B still runs: it leaves r4 (100 events, under 200) waiting.
                    try await firstHolder.query("ROLLBACK", logger: logger)
                    #expect(try await first.value.accepted == 100)
                    try await Task.sleep(for: .milliseconds(300))
                    #expect(fourthDone.withLockedValue { $0 } == false)

                    // r5 arrives; B, the last flusher, writes r4 and r5 in one transaction.
                    let fifth = post(events("r5"))
                    try await Task.sleep(for: .milliseconds(200))
                    try await secondHolder.query("ROLLBACK", logger: logger)
                    for request in [second, third, fourth, fifth] { #expect(try await request.value.accepted == 100) }
                }
            }
            let transactions = try await fixture.count(
                "SELECT count(DISTINCT ingest_xid)::int FROM events WHERE event_name IN ('r4', 'r5')")
            #expect(transactions == 1)
            #expect(try await fixture.count("SELECT count(*)::int FROM events WHERE event_name LIKE 'r_'") == 500)
        }
    }

    /// The insert lock is a session lock, which a rollback does not drop: an insert that
    /// fails, or is cancelled while it waits inside the lock, gives it back (migration 0014).
    @Test func failedOrCancelledLargeInsertGivesTheLockBack() async throws {
        try await withTestDatabase { client, _ in
            let fixture = try await IngestionFixture.make(client)
            let logger = Logger(label: "test")
            let count = 1000
            let ids = (0..<count).map { _ in UUID() }
            let time = Date(timeIntervalSince1970: Double(Int(Date().timeIntervalSince1970)))
            func call(properties: String) -> PostgresQuery {
                let texts = Array(repeating: "", count: count)
                let falses = Array(repeating: false, count: count)
                return """
                    SELECT ingest_insert_events(\(fixture.orgID), \(Array(repeating: Int32(1), count: count)), \(ids),
                        \(Array(repeating: "locked", count: count)), \(Array(repeating: properties, count: count)), \(texts),
                        \(falses), \(texts), \(falses), \(Array(repeating: time, count: count)), \([""]), \([""]),
                        \(Array(repeating: true, count: count)))
                    """
            }
            let heldLocks: PostgresQuery =
                "SELECT count(*)::int FROM pg_locks WHERE locktype = 'advisory' AND pid = pg_backend_pid()"
            try await client.withConnection { connection in
                // Fails inside the lock: properties that are not JSON.
                await #expect(throws: PSQLError.self) {
                    try await connection.query(call(properties: "not json"), logger: logger).collect()
                }
                #expect(try await connection.query(heldLocks, logger: logger).collect().first?.decode(Int.self) == 0)

                // Cancelled inside the lock: the first row's key is held by an open transaction.
                try await client.withConnection { holder in
                    try await holder.query("BEGIN", logger: logger)
                    try await holder.query(
                        """
                        INSERT INTO events (org_id, id, event_name, "timestamp")
                        VALUES (\(fixture.orgID), \(ids[0]), 'held', \(time))
                        """, logger: logger)
                    try await connection.query("SET statement_timeout = '300ms'", logger: logger)
                    let error = await #expect(throws: PSQLError.self) {
                        try await connection.query(call(properties: "{}"), logger: logger).collect()
                    }
                    #expect(error?.serverInfo?[.sqlState] == "57014")
                    try await connection.query("RESET statement_timeout", logger: logger)
                    #expect(try await connection.query(heldLocks, logger: logger).collect().first?.decode(Int.self) == 0)
                    try await holder.query("ROLLBACK", logger: logger)
                }

                // And after success.
                _ = try await connection.query(call(properties: "{}"), logger: logger).collect()
                #expect(try await connection.query(heldLocks, logger: logger).collect().first?.decode(Int.self) == 0)
            }
            #expect(try await fixture.count("SELECT count(*)::int FROM events WHERE event_name = 'locked'") == count)
        }
    }

    /// The database connection dies while the request's transaction waits: the client
    /// gets 503 and nothing is half-stored; the retry with the same id stores it once.
    @Test func databaseLostMidRequestGives503AndRetryStoresOnce() async throws {
        try await withTestDatabase { client, _ in
            let fixture = try await IngestionFixture.make(client)
            let app = Application(router: APIServer.makeRouter(.init(client: client)))
            let body = #"{"events": [{"name": "lost", "id": "5e0c8f3a-1111-4c1e-9a55-2f9f1b0e0001"}, {"name": "lost"}]}"#
            try await app.test(.router) { http in
                let status = try await client.withTransaction(logger: Logger(label: "test")) { holder in
                    // Hold the organization row so the ingestion transaction waits mid-way.
                    try await holder.query("SELECT 1 FROM organizations WHERE id = \(fixture.orgID) FOR UPDATE", logger: Logger(label: "test"))
                    async let response = post(http, "/api/events/batch", key: fixture.adminKey, json: body)
                    var terminated = 0
                    for _ in 0..<100 where terminated == 0 {
                        try await Task.sleep(for: .milliseconds(50))
                        terminated = try await client.scalar(
                            """
                            SELECT count(pg_terminate_backend(pid))::int FROM pg_stat_activity
                            WHERE datname = current_database() AND query LIKE '%ingest_events(%' AND wait_event_type = 'Lock'
                              AND pid <> pg_backend_pid()
                            """, as: Int.self) ?? 0
                    }
                    #expect(terminated == 1)
                    let (status, reply) = try await response
                    #expect(errorCode(reply) == "unavailable")
                    return status
                }
                #expect(status == .serviceUnavailable)
                #expect(try await Self.countAfterConnectionLoss(fixture, "SELECT count(*)::int FROM events") == 0)
                #expect(try await Self.countAfterConnectionLoss(fixture, "SELECT count(*)::int FROM event_ids") == 0)
                #expect(try await Self.countAfterConnectionLoss(fixture, "SELECT events_used_this_month::int FROM organizations") == 0)
                // The client retries (a 503 says to), and the pool replaces the dead connection: stored once.
                var (retryStatus, reply) = try await Self.postRetryingUnavailable(http, key: fixture.adminKey, json: body)
                #expect(retryStatus == .ok && reply["accepted"] as? Int == 2)
                (retryStatus, reply) = try await Self.postRetryingUnavailable(http, key: fixture.adminKey, json: body)
                #expect(reply["accepted"] as? Int == 1 && reply["duplicates"] as? Int == 1)
            }
            #expect(try await fixture.count("SELECT count(*)::int FROM events WHERE id = '5e0c8f3a-1111-4c1e-9a55-2f9f1b0e0001'") == 1)
            #expect(try await fixture.count("SELECT events_used_this_month::int FROM organizations") == 3)
        }
    }

    /// Nothing reachable at all: 503 with a clear message, not a 500.
    @Test func unreachableDatabaseGives503() async throws {
        try await Self.withUnreachableDatabase { down in
            let ingestor = EventIngestor(client: down, logger: Logger(label: "test"), leaseTimeout: .seconds(1))
            let started = ContinuousClock.now
            let error = await #expect(throws: AppError.self) {
                _ = try await ingestor.ingest(orgID: UUID(), events: [Self.event("x")], ipAddress: nil, userAgent: nil)
            }
            #expect(error?.code == .unavailable)
            #expect(ContinuousClock.now - started < .seconds(10))
        }
    }

    /// Over HTTP every authenticated route asks the database for the key first: with the
    /// database down that is a prompt 503 `unavailable`, not a 500 after the pool's
    /// minute-long circuit breaker.
    @Test func unreachableDatabaseGives503OverHTTP() async throws {
        try await Self.withUnreachableDatabase { down in
            var dependencies = APIServer.Dependencies(client: down)
            dependencies.authenticator = APIKeyAuthenticator(client: down, leaseTimeout: .seconds(1))
            let app = Application(router: APIServer.makeRouter(dependencies))
            try await app.test(.router) { http in
                let key = "ap_" + String(repeating: "a", count: 40)
                for (method, uri, json) in [
                    (HTTPRequest.Method.post, "/api/events", #"{"name": "x"}"#), (.get, "/api/events", nil), (.get, "/api/keys", nil),
                ] {
                    let started = ContinuousClock.now
                    let (status, body) = try await send(http, method, uri, key: key, json: json)
                    #expect(status == .serviceUnavailable, "\(method) \(uri)")
                    #expect(errorCode(body) == "unavailable")
                    #expect(ContinuousClock.now - started < .seconds(5))
                }
            }
        }
    }

    /// A running client whose every connection attempt fails at once.
    /// The pool learns that a connection died when its channel closes, an event-loop hop
    /// after the failed query returned it: the next lease may still draw it, once, and
    /// fail with a closed-connection error. A real client retries what that answers (503).
    static func postRetryingUnavailable(
        _ http: some TestClientProtocol, key: String, json: String
    ) async throws -> (HTTPResponse.Status, [String: Any]) {
        for _ in 0..<3 {
            let (status, reply) = try await post(http, "/api/events/batch", key: key, json: json)
            if status != .serviceUnavailable { return (status, reply) }
            try await Task.sleep(for: .milliseconds(50))
        }
        return try await post(http, "/api/events/batch", key: key, json: json)
    }

    /// A count read on the pool right after one of its connections was killed: drawing the
    /// dead connection is retried (see `postRetryingUnavailable`); any other error is not.
    static func countAfterConnectionLoss(_ fixture: IngestionFixture, _ sql: PostgresQuery) async throws -> Int {
        for _ in 0..<3 {
            do {
                return try await fixture.count(sql)
            } catch let error as PSQLError where [.clientClosedConnection, .serverClosedConnection].contains(error.code) {
                try await Task.sleep(for: .milliseconds(50))
            }
        }
        return try await fixture.count(sql)
    }

    static func withUnreachableDatabase(_ body: (PostgresClient) async throws -> Void) async throws {
        var configuration = PostgresClient.Configuration(unixSocketPath: "/nonexistent/.s.PGSQL.5432", username: "x", password: nil, database: "x")
        configuration.options.connectTimeout = .milliseconds(200)
        let down = PostgresClient(configuration: configuration)
        try await withThrowingDiscardingTaskGroup { group in
            group.addTask { await down.run() }
            try await body(down)
            group.cancelAll()
        }
    }

    @Test func databaseErrorsThatMeanRetryAre503() {
        #expect(JSONErrorMiddleware.isDatabaseUnavailable(ConnectionLeaseTimeout(waited: .seconds(1))))
        #expect(JSONErrorMiddleware.isDatabaseUnavailable(DeadlineExceeded(timeout: .seconds(1))))
        #expect(!JSONErrorMiddleware.isDatabaseUnavailable(AppError(.badRequest, "x")))
        #expect(JSONErrorMiddleware.appError(for: ConnectionLeaseTimeout(waited: .seconds(1))).code == .unavailable)
    }
}
