import Core
import Foundation
import Hummingbird
import Logging
import PostgresNIO

/// `POST /api/events`, `POST /api/events/batch`.
struct EventRoutes: Sendable {
    static let maximumBatchEvents = 1000
    static let maximumBatchBytes = 5 * 1024 * 1024
    static let maximumSingleBytes = 64 * 1024

    let client: PostgresClient
    let ingestor: EventIngestor

    func register(on group: RouterGroup<APIRequestContext>) {
        group.post("events", use: single)
        group.post("events/batch", use: batch)
    }

    struct BatchBody {
        let events: [IncomingEvent]
    }

    struct Rejection: Encodable {
        let index: Int
        let code: String
        let message: String
    }

    struct BatchResult: Encodable {
        let accepted: Int
        let duplicates: Int
        let rejected: [Rejection]
    }


    @Sendable func single(_ request: Request, context: APIRequestContext) async throws -> Response {
        let principal = try context.requirePrincipal(.write)
        let body = try await JSONBody.read(request, limit: Self.maximumSingleBytes)
        let event = try JSONBody.parse(body) { try JSONParser.event($0) }
        let now = Date()
        switch EventValidator.validate(
            event, now: now, retentionDays: principal.retentionDays, generatedID: EventIDs.make(count: 1, now: now)[0])
        {
        case .failure(let problem):
            throw AppError(.invalidField, problem.message)
        case .success(let valid):
            let outcome = try await store(principal, [valid], request: request, context: context)
            // {"accepted","duplicates","id"}; written by hand, this is the hottest route.
            return JSONBody.response(
                jsonText: #"{"accepted":\#(outcome.accepted),"duplicates":\#(outcome.duplicates),"id":"\#(valid.id.uuidString.lowercased())"}"#,
                status: outcome.accepted == 1 ? .accepted : .ok)
        }
    }

    @Sendable func batch(_ request: Request, context: APIRequestContext) async throws -> Response {
        let principal = try context.requirePrincipal(.write)
        let body = try await JSONBody.read(request, limit: Self.maximumBatchBytes)
        guard let events = try JSONBody.parse(body, with: { try JSONParser.eventBatch($0) }) else {
            throw AppError(.invalidJSON, "request body must be an object with an 'events' array")
        }
        let batch = BatchBody(events: events)
        guard batch.events.count <= Self.maximumBatchEvents else {
            throw AppError(.payloadTooLarge, "a batch holds at most \(Self.maximumBatchEvents) events, got \(batch.events.count)")
        }
        let now = Date()
        var valid: [ValidEvent] = []
        var rejected: [Rejection] = []
        let ids = EventIDs.make(count: batch.events.count, now: now)
        for (index, event) in batch.events.enumerated() {
            switch EventValidator.validate(event, now: now, retentionDays: principal.retentionDays, generatedID: ids[index]) {
            case .success(let event): valid.append(event)
            case .failure(let problem): rejected.append(Rejection(index: index, code: problem.code, message: problem.message))
            }
        }
        let outcome = try await store(principal, valid, request: request, context: context)
        return try JSONBody.response(
            BatchResult(accepted: outcome.accepted, duplicates: outcome.duplicates, rejected: rejected))
    }

    func store(
        _ principal: Principal, _ events: [ValidEvent], request: Request, context: APIRequestContext
    ) async throws -> EventIngestor.Outcome {
        do {
            return try await ingestor.ingest(
                orgID: principal.orgID, events: events, ipAddress: context.remoteAddress?.ipAddress,
                userAgent: request.headers[.userAgent].map { String($0.prefix(1024)) })
        } catch let error as QuotaExceeded {
            throw error.appError
        }
    }

}
