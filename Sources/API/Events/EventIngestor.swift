import Core
import Foundation
import Logging
import NIOConcurrencyHelpers
import PostgresNIO

/// Stores events with group commit: requests for one organization that arrive while
/// its previous transaction runs are written together in the next one. Each request is
/// answered only after its events are committed, so an accepted event is durable, and
/// one commit serves many requests.
///
/// In that one transaction: the organization's row is locked (quota is exact across
/// every API node), client ids are recorded in `event_ids` (a retry is stored once),
/// requests are admitted in arrival order while they fit the quota, and the events
/// are inserted.
public final class EventIngestor: Sendable {
    public struct Outcome: Sendable, Equatable {
        public let accepted: Int
        public let duplicates: Int
    }

    struct Request {
        let events: [ValidEvent]
        let ipAddress: String?
        let userAgent: String?
        let continuation: CheckedContinuation<Outcome, any Error>
    }

    struct OrgQueue {
        var pending: [Request] = []
        var pendingEvents = 0
        var flushers = 0
    }

    let client: PostgresClient
    let logger: Logger
    /// Events written per transaction at most.
    let maximumBatchEvents: Int
    /// Transactions in flight per organization: another inserts while one commits or
    /// waits for the organization's row, so PostgreSQL uses more than one core for one
    /// busy organization. Three measured best on 2 cores (batches of 100 from 64
    /// connections: 236,000–263,000 events/s, p99 41–45 ms; two: 226,000–228,000, p99 48–50 ms).
    let maximumFlushers: Int
    /// Events waiting before another transaction starts alongside a running one, or
    /// before a flusher that is not the last one takes another batch. Below it, waiting
    /// for the next group commit is cheaper than a second, smaller commit.
    let parallelThreshold: Int
    /// How long a write waits for a database connection before answering 503.
    let leaseTimeout: Duration
    /// How long one group commit may take before its requests hear 503. A healthy call
    /// takes milliseconds; this only ends waits that would never end.
    static let callTimeout: Duration = .seconds(30)
    /// Told after every commit that stored events.
    let rollupWaker: RollupWaker?
    private let queues = NIOLockedValueBox<[UUID: OrgQueue]>([:])

    public init(
        client: PostgresClient, logger: Logger, maximumBatchEvents: Int = 2000, maximumFlushers: Int = 3,
        parallelThreshold: Int = 1000, leaseTimeout: Duration = .seconds(5), rollupWaker: RollupWaker? = nil
    ) {
        self.rollupWaker = rollupWaker
        self.leaseTimeout = leaseTimeout
        self.client = client
        self.logger = logger
        self.maximumBatchEvents = maximumBatchEvents
        self.maximumFlushers = maximumFlushers
        self.parallelThreshold = parallelThreshold
    }

    func ingest(orgID: UUID, events: [ValidEvent], ipAddress: String?, userAgent: String?) async throws -> Outcome {
        guard !events.isEmpty else { return Outcome(accepted: 0, duplicates: 0) }
        return try await withCheckedThrowingContinuation { continuation in
            let startFlushing = queues.withLockedValue { queues -> Bool in
                var queue = queues.removeValue(forKey: orgID) ?? OrgQueue()
                defer { queues[orgID] = queue }
                queue.pending.append(
                    Request(events: events, ipAddress: ipAddress, userAgent: userAgent, continuation: continuation))
                queue.pendingEvents += events.count
                guard queue.flushers == 0 || (queue.flushers < maximumFlushers && queue.pendingEvents >= parallelThreshold)
                else { return false }
                queue.flushers += 1
                return true
            }
            if startFlushing {
                Task { await self.flush(orgID: orgID) }
            }
        }
    }

    /// Writes this organization's pending requests, batch after batch, until none wait.
    func flush(orgID: UUID) async {
        while true {
            let batch = queues.withLockedValue { queues -> [Request] in
                guard var queue = queues[orgID] else { return [] }
                // Only the last flusher takes a small batch. Others leave it to grow: in a
                // closed loop the requests answered by one commit come back over the next
                // milliseconds, and a flusher that took what had arrived so far wrote a
                // third of its calls with under 1,000 events, as extra commits that also
                // skip migration 0014's turns (batches of 100 from 64 connections: p99
                // 50–54 ms → 45–50 ms, 5 % more events/s).
                guard !queue.pending.isEmpty, queue.flushers == 1 || queue.pendingEvents >= parallelThreshold else {
                    queue.flushers -= 1
                    queues[orgID] = queue.flushers == 0 ? nil : queue
                    return []
                }
                // A client id appears in one request per transaction at most, so refusing
                // one request (quota) never turns another's copy into a false duplicate.
                var taken = 0, events = 0
                var clientIDs: Set<UUID> = []
                requests: while taken < queue.pending.count {
                    let request = queue.pending[taken]
                    if taken > 0, events + request.events.count > maximumBatchEvents { break }
                    var ownIDs: Set<UUID> = []
                    for event in request.events where event.clientSuppliedID {
                        if taken > 0, clientIDs.contains(event.id) { break requests }
                        ownIDs.insert(event.id)
                    }
                    clientIDs.formUnion(ownIDs)
                    events += request.events.count
                    taken += 1
                }
                let batch = Array(queue.pending[..<taken])
                queue.pending.removeFirst(taken)
                queue.pendingEvents -= events
                queues[orgID] = queue
                return batch
            }
            if batch.isEmpty { return }
            do {
                let results = try await writeRetryingConflicts(orgID: orgID, batch: batch)
                rollupWaker?.poke()
                for (request, result) in zip(batch, results) {
                    request.continuation.resume(with: result)
                }
            } catch {
                logger.error("cannot store events", metadata: ["org_id": "\(orgID)", "error": "\(String(reflecting: error))"])
                let failure = AppError(.unavailable, "the event store is unavailable; nothing was stored, retry with the same event ids")
                for request in batch { request.continuation.resume(throwing: failure) }
            }
        }
    }

    /// A deadlock or serialization failure rolled the whole call back: running it again
    /// is safe, and better than a 503 for a conflict the client cannot cause or fix.
    func writeRetryingConflicts(orgID: UUID, batch: [Request]) async throws -> [Result<Outcome, any Error>] {
        var attempt = 1
        while true {
            do {
                return try await write(orgID: orgID, batch: batch)
            } catch let error as PSQLError where attempt < 3 && Self.isTransient(error) {
                logger.warning("retrying event write after a conflict", metadata: ["sqlstate": "\(error.serverInfo?[.sqlState] ?? "")"])
                attempt += 1
            }
        }
    }

    static func isTransient(_ error: PSQLError) -> Bool {
        guard error.code == .server, let state = error.serverInfo?[.sqlState] else { return false }
        return state == "40P01" || state == "40001"
    }

    /// One call of `ingest_events` (migrations 0005 and 0010): the whole transaction runs inside
    /// PostgreSQL, so a group commit costs one round trip.
    func write(orgID: UUID, batch: [Request]) async throws -> [Result<Outcome, any Error>] {
        let total = batch.reduce(0) { $0 + $1.events.count }
        var requestIndex = PostgresBinaryArray<Int32>(reservingCapacity: total * 8)
        var ids = PostgresBinaryArray<UUID>(reservingCapacity: total * 20)
        var clientSupplied = PostgresBinaryArray<Bool>(reservingCapacity: total * 5)
        var names = PostgresBinaryArray<String>(reservingCapacity: total * 24)
        var properties = PostgresBinaryArray<String>(reservingCapacity: batch.reduce(0) { total, request in
            request.events.reduce(total) { $0 + $1.properties.utf8.count + 4 }
        })
        var users = PostgresBinaryArray<String>(reservingCapacity: total * 16)
        var hasUser = PostgresBinaryArray<Bool>(reservingCapacity: total * 5)
        var sessions = PostgresBinaryArray<String>(reservingCapacity: total * 16)
        var hasSession = PostgresBinaryArray<Bool>(reservingCapacity: total * 5)
        var times = PostgresBinaryArray<Date>(reservingCapacity: total * 12)
        var ips = PostgresBinaryArray<String>(), agents = PostgresBinaryArray<String>()
        for (index, request) in batch.enumerated() {
            ips.append(request.ipAddress ?? "")
            agents.append(request.userAgent ?? "")
            for event in request.events {
                requestIndex.append(Int32(index + 1))
                ids.append(event.id)
                clientSupplied.append(event.clientSuppliedID)
                names.append(event.name)
                properties.append(event.properties)
                users.append(event.userID ?? "")
                hasUser.append(event.userID != nil)
                sessions.append(event.sessionID ?? "")
                hasSession.append(event.sessionID != nil)
                times.append(event.timestamp)
            }
        }
        let requests = Int32(batch.count)
        var counts = PostgresBinaryArray<Int32>()
        for request in batch { counts.append(Int32(request.events.count)) }
        // One row of arrays, one element per request (migration 0010): a row per request,
        // aggregated again here, was a visible cost at 20,000 single events/s.
        let call: PostgresQuery = """
            SELECT accepted, duplicates, admitted, used_before, monthly_limit, cycle_start
            FROM ingest_events(\(orgID), \(requests), \(requestIndex), \(ids), \(clientSupplied), \(names), \(properties),
                               \(users), \(hasUser), \(sessions), \(hasSession), \(times), \(ips), \(agents), \(counts))
            """
        // Bounded wait for a connection: with the database down the client hears 503 in
        // seconds, not after the pool's minute-long circuit breaker.
        let logger = self.logger
        typealias Row = ([Int32]?, [Int32]?, [Bool]?, [Int64]?, Int64?, Date?)
        // Bounded as a whole (see withDeadline): a call lost on a connection that closed
        // under it would otherwise stall this organization's ingestion for good. A lost
        // call never reached the server; one merely slower than the deadline could still
        // commit, which a retry with the same event ids absorbs (idempotency).
        let rows = try await client.withConnection(leaseTimeout: leaseTimeout, deadline: Self.callTimeout, logger: logger) {
            connection -> [Row] in
            var rows: [Row] = []
            for try await row in try await connection.query(call, logger: logger).decode(Row.self) { rows.append(row) }
            return rows
        }
        var results: [Result<Outcome, any Error>] = Array(
            repeating: .failure(AppError(.unauthorized, "organization no longer exists")), count: batch.count)
        // No rows aggregated (the organization is gone): all NULL.
        guard case let (accepted?, duplicates?, admitted?, usedBefore?, limit?, cycleStart?)? = rows.first,
            accepted.count == batch.count, duplicates.count == batch.count, admitted.count == batch.count,
            usedBefore.count == batch.count
        else { return results }
        for index in results.indices {
            if admitted[index] {
                results[index] = .success(Outcome(accepted: Int(accepted[index]), duplicates: Int(duplicates[index])))
            } else {
                let resetAt = Calendar.utc.date(byAdding: .month, value: 1, to: cycleStart) ?? cycleStart
                results[index] = .failure(QuotaExceeded(limit: limit, used: usedBefore[index], resetAt: resetAt))
            }
        }
        return results
    }
}

/// 429 with the limit and when the period resets.
struct QuotaExceeded: Error, CustomStringConvertible {
    let limit: Int64
    let used: Int64
    let resetAt: Date

    var appError: AppError {
        AppError(
            .quotaExceeded,
            "monthly event limit of \(limit) reached (\(used) used); nothing in this request was stored; the quota resets at \(Timestamps.format(resetAt))")
    }

    var description: String { appError.message }
}

extension Calendar {
    static let utc: Calendar = {
        var calendar = Calendar(identifier: .gregorian)
        calendar.timeZone = TimeZone(identifier: "UTC")!
        return calendar
    }()
}
