import Core
import Foundation
import Hummingbird
import HummingbirdWebSocket
import Logging
import PostgresNIO

/// `GET /ws/dashboard/:id`: a WebSocket that receives the dashboard's full data on
/// connect, then again after every rollup that changed one of its widgets' metrics.
/// The API key comes in the `Authorization` header or, for browsers (which cannot set
/// headers on a WebSocket), in a `token` query parameter.
struct DashboardSocketRoutes: Sendable {
    let client: PostgresClient
    let authenticator: APIKeyAuthenticator
    let hub: DashboardHub
    /// A client that does not take a message within this time is dropped.
    let writeTimeout: Duration

    struct SlowClient: Error {}

    func register(on router: Router<APIRequestContext>) {
        router.ws(
            "ws/dashboard/:id",
            shouldUpgrade: { request, context in
                // Refused before the upgrade, as an ordinary JSON error response.
                _ = try await self.authorize(request, context: context)
                return .upgrade([:])
            },
            onUpgrade: { inbound, outbound, socket in
                guard let (principal, dashboardID) = try? await self.authorize(socket.request, context: socket.requestContext)
                else { return }
                let logger = socket.logger
                let (subscription, stream) = hub.subscribe(orgID: principal.orgID, dashboardID: dashboardID)
                defer { hub.unsubscribe(dashboardID: dashboardID, id: subscription) }
                // Subscribed first, then the snapshot: no update between the two is lost.
                let data = DashboardData(client: client)
                guard let dashboard = try await data.load(orgID: principal.orgID, id: dashboardID, logger: logger) else { return }
                let snapshot = try await DashboardHub.message(
                    type: "snapshot", data: data, orgID: principal.orgID, dashboard: dashboard, changed: nil, logger: logger)
                try await Self.write(snapshot, to: outbound, timeout: writeTimeout)
                try await withThrowingTaskGroup(of: Void.self) { group in
                    // Ends when the client closes (inbound frames are not used).
                    group.addTask { for try await _ in inbound {} }
                    group.addTask {
                        for await message in stream { try await Self.write(message, to: outbound, timeout: writeTimeout) }
                    }
                    _ = try await group.next()
                    group.cancelAll()
                }
            })
    }

    func authorize(_ request: Request, context: APIRequestContext) async throws -> (Principal, UUID) {
        var authorization = request.headers[.authorization]
        if authorization == nil, let token = request.uri.queryParameters["token"] {
            authorization = "Bearer \(token)"
        }
        let principal = try await authenticator.authenticate(authorization: authorization, logger: context.logger)
        try principal.require(.read)
        guard let id = context.parameters.get("id").flatMap(UUID.init(uuidString:)) else {
            throw AppError(.notFound, "no such dashboard")
        }
        // Another organization's dashboard is not found.
        let exists = try await client.query(
            "SELECT 1 FROM dashboards WHERE org_id = \(principal.orgID) AND id = \(id)", logger: context.logger
        ).collect()
        guard !exists.isEmpty else { throw AppError(.notFound, "no such dashboard") }
        return (principal, id)
    }

    static func write(_ text: String, to outbound: WebSocketOutboundWriter, timeout: Duration) async throws {
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { try await outbound.write(.text(text)) }
            group.addTask {
                try await Task.sleep(for: timeout)
                throw SlowClient()
            }
            _ = try await group.next()
            group.cancelAll()
        }
    }
}
