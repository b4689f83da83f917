import Core
import Foundation
import Hummingbird
import Logging
import PostgresNIO

/// Turns every error into DESIGN §7's body, `{"error": {"code", "message"}}`, with the
/// matching status. Unknown errors become a bare 500: their detail is logged, never sent.
struct JSONErrorMiddleware: RouterMiddleware {
    typealias Context = APIRequestContext

    func handle(
        _ request: Request, context: Context, next: (Request, Context) async throws -> Response
    ) async throws -> Response {
        do {
            return try await next(request, context)
        } catch {
            let appError = Self.appError(for: error)
            if appError.code.httpStatus >= 500 {
                context.logger.error("request failed", metadata: ["error": "\(String(reflecting: error))"])
            }
            return Self.response(for: appError)
        }
    }

    static func appError(for error: any Error) -> AppError {
        switch error {
        case let error as AppError:
            return error
        case let error as HTTPError:
            return AppError(code(for: error.status), error.body ?? defaultMessage(for: error.status))
        case is DecodingError:
            return AppError(.invalidJSON, "request body is not valid JSON for this endpoint")
        case let error as PostgresTransactionError where error.closureError is AppError && error.rollbackError == nil:
            // A route refused inside its transaction (which rolled back): the refusal is the answer.
            return error.closureError as! AppError
        case let error where isDatabaseUnavailable(error):
            return AppError(.unavailable, "the database is unavailable; retry later")
        default:
            return AppError(.internalError, "internal error")
        }
    }

    /// The database is down, restarting, out of connections or not answering — the
    /// client may retry — as opposed to a query that failed (a bug: 500).
    static func isDatabaseUnavailable(_ error: any Error) -> Bool {
        switch error {
        case is ConnectionLeaseTimeout, is DeadlineExceeded, is NoOpenConnection:
            return true
        case let error as PostgresTransactionError:
            return [error.beginError, error.closureError, error.commitError].contains { $0.map(isDatabaseUnavailable) ?? false }
        case let error as PSQLError:
            switch error.code {
            case .connectionError, .serverClosedConnection, .clientClosedConnection, .uncleanShutdown, .poolClosed:
                return true
            case .server:
                // 08: connection exception; 53: insufficient resources; 57P01–57P03:
                // shutting down, crashed, not accepting connections yet.
                let state = error.serverInfo?[.sqlState] ?? ""
                return state.hasPrefix("08") || state.hasPrefix("53") || ["57P01", "57P02", "57P03"].contains(state)
            default:
                return false
            }
        default:
            return false
        }
    }

    static func code(for status: HTTPResponse.Status) -> AppError.Code {
        switch status.code {
        case 400: .badRequest
        case 401: .unauthorized
        case 403: .forbidden
        case 404: .notFound
        case 405: .methodNotAllowed
        case 409: .conflict
        case 410: .gone
        case 413: .payloadTooLarge
        case 422: .invalidField
        case 429: .rateLimited
        case 503: .unavailable
        default: AppError.Code(status.reasonPhrase.lowercased().replacingOccurrences(of: " ", with: "_"), status: status.code)
        }
    }

    static func defaultMessage(for status: HTTPResponse.Status) -> String {
        switch status.code {
        case 404: "no such resource"
        case 413: "request body too large"
        default: status.reasonPhrase
        }
    }

    static func response(for error: AppError) -> Response {
        struct Body: Encodable {
            struct Detail: Encodable {
                let code: String
                let message: String
            }
            let error: Detail
        }
        let data = (try? JSONEncoder().encode(Body(error: .init(code: error.code.rawValue, message: error.message))))
            ?? Data(#"{"error":{"code":"internal_error","message":"internal error"}}"#.utf8)
        return Response(
            status: .init(code: error.code.httpStatus),
            headers: [.contentType: "application/json; charset=utf-8"],
            body: .init(byteBuffer: ByteBuffer(bytes: data)))
    }
}
