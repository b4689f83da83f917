import Core
import Hummingbird
import Logging
import PostgresNIO

/// Builds the HTTP application: routes, middleware and the services it depends on.
public enum APIServer {
    public struct Dependencies: Sendable {
        public var client: PostgresClient
        public init(client: PostgresClient) {
            self.client = client
        }
    }

    /// The router with every route and middleware, usable alone in tests.
    public static func makeRouter(_ dependencies: Dependencies) -> Router<APIRequestContext> {
        let router = Router(context: APIRequestContext.self)
        router.add(middleware: RequestIDMiddleware())
        router.add(middleware: LogRequestsMiddleware(.info))
        router.add(middleware: JSONErrorMiddleware())
        HealthRoutes(client: dependencies.client).register(on: router)
        OpenAPIRoutes().register(on: router)
        return router
    }

    /// The application listening on `host:port`; the caller adds it to its service group.
    public static func makeApplication(
        _ dependencies: Dependencies, host: String, port: Int, logger: Logger
    ) -> some ApplicationProtocol {
        Application(
            router: makeRouter(dependencies),
            configuration: .init(address: .hostname(host, port: port), serverName: "analyticspro"),
            logger: logger)
    }
}
