import Core
import Hummingbird
import HummingbirdWebSocket
import Logging
import NIOCore

/// Per-request state shared by every route: Hummingbird's core storage plus the
/// request id that ties log lines and the response together.
public struct APIRequestContext: RequestContext, WebSocketRequestContext {
    public var coreContext: CoreRequestContextStorage
    /// Set by `RequestIDMiddleware`: the caller's `X-Request-Id` or a generated one.
    public var requestID: String
    /// Set by `AuthMiddleware` on authenticated routes.
    public var principal: Principal?
    /// The peer's address (the client, or the proxy in front of this node).
    public let remoteAddress: SocketAddress?
    /// Set by a WebSocket route that accepts an upgrade.
    public let webSocket = WebSocketHandlerReference<APIRequestContext>()

    public init(source: Source) {
        self.coreContext = .init(source: source)
        self.requestID = ""
        self.principal = nil
        self.remoteAddress = source.channel.remoteAddress
    }

    /// The authenticated caller; routes behind `AuthMiddleware` always have one.
    public func requirePrincipal(_ permission: APIKeyPermission) throws -> Principal {
        guard let principal else { throw AppError(.unauthorized, "authentication required") }
        try principal.require(permission)
        return principal
    }
}
