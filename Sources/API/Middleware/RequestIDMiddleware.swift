import HTTPTypes
import Hummingbird
import Logging

/// Gives every request an id: the caller's `X-Request-Id` when it is sane, else
/// Hummingbird's own. It is logged with every line and echoed in the response.
struct RequestIDMiddleware: RouterMiddleware {
    typealias Context = APIRequestContext

    func handle(
        _ request: Request, context: Context, next: (Request, Context) async throws -> Response
    ) async throws -> Response {
        var context = context
        let incoming = request.headers[.requestID]
        let id = incoming.flatMap(Self.isAcceptable) == true ? incoming! : context.id
        context.requestID = id
        // Hummingbird already logs its own id as `hb.request.id`; a caller's id is added
        // only when there is one (each metadata change re-renders the logger's prefix).
        if id != context.id { context.logger[metadataKey: "request_id"] = .string(id) }
        var response = try await next(request, context)
        response.headers[.requestID] = id
        return response
    }

    /// Ids from outside end up in logs: short and plain only.
    static func isAcceptable(_ id: String) -> Bool {
        (1...128).contains(id.utf8.count)
            && id.utf8.allSatisfy { ($0 >= 0x30 && $0 <= 0x39) || ($0 | 0x20 >= 0x61 && $0 | 0x20 <= 0x7A) || $0 == 0x2D || $0 == 0x5F || $0 == 0x2E }
    }
}

extension HTTPField.Name {
    static let requestID = Self("X-Request-Id")!
}
