import Hummingbird
import Logging

/// Per-request state shared by every route: Hummingbird's core storage plus the
/// request id that ties log lines and the response together.
public struct APIRequestContext: RequestContext {
    public var coreContext: CoreRequestContextStorage
    /// Set by `RequestIDMiddleware`: the caller's `X-Request-Id` or a generated one.
    public var requestID: String

    public init(source: Source) {
        self.coreContext = .init(source: source)
        self.requestID = ""
    }
}
