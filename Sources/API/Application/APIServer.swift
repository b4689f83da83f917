import Core
import Hummingbird
import Logging
import PostgresNIO

/// Builds the HTTP application: routes, middleware and the services it depends on.
public enum APIServer {
    public struct Dependencies: Sendable {
        public var client: PostgresClient
        public var authenticator: APIKeyAuthenticator
        public var ingestor: EventIngestor
        public var hub: DashboardHub
        /// A WebSocket client that does not take a message within this time is dropped.
        public var webSocketWriteTimeout: Duration = .seconds(10)

        /// - Parameter listenConfiguration: a connection for LISTEN (rollup notifications);
        ///   without it, live dashboards get their snapshot but no pushes.
        public init(
            client: PostgresClient, listenConfiguration: PostgresConnection.Configuration? = nil,
            logger: Logger = Logger(label: "analyticspro.api")
        ) {
            self.client = client
            self.hub = DashboardHub(client: client, listenConfiguration: listenConfiguration, logger: logger)
            self.authenticator = APIKeyAuthenticator(client: client)
            self.ingestor = EventIngestor(
                client: client, logger: logger, rollupWaker: RollupWaker(client: client, logger: logger))
        }
    }

    /// The router with every route and middleware, usable alone in tests.
    public static func makeRouter(_ dependencies: Dependencies) -> Router<APIRequestContext> {
        let router = Router(context: APIRequestContext.self)
        router.add(middleware: RequestIDMiddleware())
        // One line per request only at debug: at 20,000 requests/s an info access log costs more than the request.
        router.add(middleware: LogRequestsMiddleware(.debug))
        router.add(middleware: JSONErrorMiddleware())
        HealthRoutes(client: dependencies.client).register(on: router)
        OpenAPIRoutes().register(on: router)
        let api = router.group("api").add(middleware: AuthMiddleware(authenticator: dependencies.authenticator))
        EventRoutes(client: dependencies.client, ingestor: dependencies.ingestor).register(on: api)
        EventQueryRoutes(client: dependencies.client).register(on: api)
        EventExportRoutes(client: dependencies.client).register(on: api)
        KeyRoutes(client: dependencies.client).register(on: api)
        MetricRoutes(client: dependencies.client).register(on: api)
        AnalyticsRoutes(client: dependencies.client).register(on: api)
        DashboardRoutes(client: dependencies.client).register(on: api)
        ExportRoutes(client: dependencies.client).register(on: api)
        return router
    }

    /// The router for WebSocket upgrades (kept apart so plain requests never match it).
    public static func makeWebSocketRouter(_ dependencies: Dependencies) -> Router<APIRequestContext> {
        let router = Router(context: APIRequestContext.self)
        router.add(middleware: RequestIDMiddleware())
        router.add(middleware: JSONErrorMiddleware())
        DashboardSocketRoutes(
            client: dependencies.client, authenticator: dependencies.authenticator, hub: dependencies.hub,
            writeTimeout: dependencies.webSocketWriteTimeout)
            .register(on: router)
        return router
    }

    /// The application listening on `host:port`; the caller adds it to its service group.
    /// - Parameter onServerRunning: told the bound port (useful with port 0).
    public static func makeApplication(
        _ dependencies: Dependencies, host: String, port: Int, logger: Logger,
        onServerRunning: @escaping @Sendable (Int) async -> Void = { _ in }
    ) -> some ApplicationProtocol {
        Application(
            router: makeRouter(dependencies),
            server: .http1WebSocketUpgrade(webSocketRouter: makeWebSocketRouter(dependencies)),
            configuration: .init(address: .hostname(host, port: port), serverName: "analyticspro"),
            services: [LastUsedFlushService(authenticator: dependencies.authenticator, logger: logger), dependencies.hub],
            onServerRunning: { channel in await onServerRunning(channel.localAddress?.port ?? port) },
            logger: logger)
    }
}
