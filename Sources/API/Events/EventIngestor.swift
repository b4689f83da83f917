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
        var flushing = false
    }

    let client: PostgresClient
    let logger: Logger
    /// Events written per transaction at most.
    let maximumBatchEvents: Int
    private let queues = NIOLockedValueBox<[UUID: OrgQueue]>([:])

    public init(client: PostgresClient, logger: Logger, maximumBatchEvents: Int = 5000) {
        self.client = client
        self.logger = logger
        self.maximumBatchEvents = maximumBatchEvents
    }

    func ingest(orgID: UUID, events: [ValidEvent], ipAddress: String?, userAgent: String?) async throws -> Outcome {
        guard !events.isEmpty else { return Outcome(accepted: 0, duplicates: 0) }
        return try await withCheckedThrowingContinuation { continuation in
            let startFlushing = queues.withLockedValue { queues -> Bool in
                queues[orgID, default: OrgQueue()].pending.append(
                    Request(events: events, ipAddress: ipAddress, userAgent: userAgent, continuation: continuation))
                if queues[orgID]!.flushing { return false }
                queues[orgID]!.flushing = true
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
                guard var queue = queues[orgID], !queue.pending.isEmpty else {
                    queues[orgID] = nil
                    return []
                }
                var taken: [Request] = []
                var events = 0
                while !queue.pending.isEmpty, taken.isEmpty || events + queue.pending[0].events.count <= maximumBatchEvents {
                    let request = queue.pending.removeFirst()
                    events += request.events.count
                    taken.append(request)
                }
                queues[orgID] = queue
                return taken
            }
            if batch.isEmpty { return }
            do {
                let results = try await write(orgID: orgID, batch: batch)
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

    func write(orgID: UUID, batch: [Request]) async throws -> [Result<Outcome, any Error>] {
        try await client.withTransaction(logger: logger) { connection in
            try await self.write(orgID: orgID, batch: batch, on: connection)
        }
    }

    private func write(orgID: UUID, batch: [Request], on connection: PostgresConnection) async throws -> [Result<Outcome, any Error>] {
        // The row lock serialises quota decisions for this organization on every node.
        let quota = try await connection.query(
            """
            SELECT monthly_event_limit, events_used_this_month, billing_cycle_start
            FROM organizations WHERE id = \(orgID) FOR UPDATE
            """, logger: logger
        ).collect().first?.decode((Int64, Int64, Date).self)
        guard let (limit, used, cycleStart) = quota else {
            return batch.map { _ in .failure(AppError(.unauthorized, "organization no longer exists")) }
        }

        // Client ids not seen before (in the retention window, or earlier in this batch).
        let clientEvents = batch.flatMap { $0.events.filter(\.clientSuppliedID) }
        var fresh: Set<UUID> = []
        if !clientEvents.isEmpty {
            let ids = clientEvents.map(\.id), times = clientEvents.map(\.timestamp)
            for try await id in try await connection.query(
                """
                INSERT INTO event_ids (org_id, id, "timestamp")
                SELECT \(orgID), id, ts FROM unnest(\(ids)::uuid[], \(times)::timestamptz[]) AS u(id, ts)
                ON CONFLICT DO NOTHING RETURNING id
                """, logger: logger
            ).decode(UUID.self) {
                fresh.insert(id)
            }
        }

        var results: [Result<Outcome, any Error>] = []
        var stored: [(ValidEvent, Request)] = []
        var refusedIDs: [UUID] = []
        var counted = used
        for request in batch {
            var newEvents: [ValidEvent] = []
            var duplicates = 0
            var claimed: [UUID] = []
            for event in request.events {
                if !event.clientSuppliedID {
                    newEvents.append(event)
                } else if fresh.remove(event.id) != nil {
                    newEvents.append(event)
                    claimed.append(event.id)
                } else {
                    duplicates += 1
                }
            }
            if counted + Int64(newEvents.count) > limit {
                // All or nothing: give back the ids this request claimed.
                refusedIDs += claimed
                let resetAt = Calendar.utc.date(byAdding: .month, value: 1, to: cycleStart) ?? cycleStart
                results.append(.failure(QuotaExceeded(limit: limit, used: counted, resetAt: resetAt)))
                continue
            }
            counted += Int64(newEvents.count)
            stored += newEvents.map { ($0, request) }
            results.append(.success(Outcome(accepted: newEvents.count, duplicates: duplicates)))
        }
        if !refusedIDs.isEmpty {
            try await connection.query(
                "DELETE FROM event_ids WHERE org_id = \(orgID) AND id = ANY(\(refusedIDs)::uuid[])", logger: logger)
        }
        if !stored.isEmpty {
            var ids: [UUID] = [], names: [String] = [], properties: [String] = [], users: [String] = []
            var sessions: [String] = [], times: [Date] = [], ips: [String] = [], agents: [String] = []
            var hasUser: [Bool] = [], hasSession: [Bool] = [], hasAgent: [Bool] = []
            ids.reserveCapacity(stored.count)
            for (event, request) in stored {
                ids.append(event.id)
                names.append(event.name)
                properties.append(event.properties)
                users.append(event.userID ?? "")
                hasUser.append(event.userID != nil)
                sessions.append(event.sessionID ?? "")
                hasSession.append(event.sessionID != nil)
                times.append(event.timestamp)
                ips.append(request.ipAddress ?? "")
                agents.append(request.userAgent ?? "")
                hasAgent.append(request.userAgent != nil)
            }
            // Arrays carry no NULLs: a parallel flag says whether a value is present.
            try await connection.query(
                """
                INSERT INTO events (org_id, id, event_name, properties, user_id, session_id, "timestamp", ip_address, user_agent)
                SELECT \(orgID), id, name, props::jsonb, CASE WHEN has_uid THEN uid END, CASE WHEN has_sid THEN sid END, ts,
                       nullif(ip, '')::inet, CASE WHEN has_ua THEN ua END
                FROM unnest(\(ids)::uuid[], \(names)::text[], \(properties)::text[], \(users)::text[], \(hasUser)::bool[],
                            \(sessions)::text[], \(hasSession)::bool[], \(times)::timestamptz[], \(ips)::text[],
                            \(agents)::text[], \(hasAgent)::bool[])
                    AS e(id, name, props, uid, has_uid, sid, has_sid, ts, ip, ua, has_ua)
                """, logger: logger)
            let added = Int64(stored.count)
            try await connection.query(
                "UPDATE organizations SET events_used_this_month = events_used_this_month + \(added) WHERE id = \(orgID)",
                logger: logger)
            try await connection.query(
                """
                UPDATE usage_periods SET events_count = events_count + \(added)
                WHERE org_id = \(orgID) AND period_start = \(cycleStart)::date
                """, logger: logger)
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
