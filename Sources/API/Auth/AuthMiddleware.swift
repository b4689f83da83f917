import Hummingbird

/// Requires an API key on every route behind it and records who called.
struct AuthMiddleware: RouterMiddleware {
    typealias Context = APIRequestContext
    let authenticator: APIKeyAuthenticator

    func handle(
        _ request: Request, context: Context, next: (Request, Context) async throws -> Response
    ) async throws -> Response {
        var context = context
        let principal = try await authenticator.authenticate(
            authorization: request.headers[.authorization], logger: context.logger)
        context.principal = principal
        context.logger[metadataKey: "org_id"] = .stringConvertible(principal.orgID)
        return try await next(request, context)
    }
}
