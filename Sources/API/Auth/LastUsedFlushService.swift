import Logging
import ServiceLifecycle

/// Writes API keys' `last_used_at` once a minute (and at shutdown), not per request.
struct LastUsedFlushService: Service {
    let authenticator: APIKeyAuthenticator
    let logger: Logger
    var interval: Duration = .seconds(60)

    func run() async throws {
        while !Task.isShuttingDownGracefully && !Task.isCancelled {
            try? await cancelWhenGracefulShutdown { try await Task.sleep(for: interval) }
            do {
                try await authenticator.flushLastUsed(logger: logger)
            } catch {
                logger.warning("cannot record API key use", metadata: ["error": "\(String(reflecting: error))"])
            }
        }
    }
}
