import Core
import Hummingbird
import PostgresNIO

/// Liveness and readiness, for load balancers and orchestrators.
struct HealthRoutes: Sendable {
    let client: PostgresClient

    func register(on router: Router<APIRequestContext>) {
        // Up: the process answers. Says nothing about the database, on purpose, so a
        // database outage does not get every API node restarted.
        router.get("/healthz") { _, _ in
            Self.json(.ok, #"{"status":"ok"}"#)
        }
        // Ready: the database answers and carries this binary's schema.
        router.get("/readyz") { _, context in
            switch await Readiness.check(client: client, logger: context.logger) {
            case .ready:
                return Self.json(.ok, #"{"status":"ready"}"#)
            case .databaseUnreachable:
                return Self.json(.serviceUnavailable, #"{"status":"unavailable","reason":"database unreachable"}"#)
            case .migrationsPending:
                return Self.json(.serviceUnavailable, #"{"status":"unavailable","reason":"migrations pending"}"#)
            }
        }
    }

    static func json(_ status: HTTPResponse.Status, _ body: String) -> Response {
        Response(
            status: status, headers: [.contentType: "application/json", .cacheControl: "no-store"],
            body: .init(byteBuffer: ByteBuffer(string: body)))
    }
}
