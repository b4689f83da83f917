import Core
import Foundation
import Hummingbird
import Logging
import PostgresNIO

/// `POST /api/keys`, `GET /api/keys`, `DELETE /api/keys/:id` (admin permission).
struct KeyRoutes: Sendable {
    let client: PostgresClient

    func register(on group: RouterGroup<APIRequestContext>) {
        group.post("keys", use: create)
        group.get("keys", use: list)
        group.delete("keys/:id", use: revoke)
    }

    struct KeyInfo: Encodable {
        let id: String
        let name: String
        let prefix: String
        let permissions: [String]
        let created_at: Date
        let expires_at: Date?
        let last_used_at: Date?
    }

    struct Created: Encodable {
        let id: String
        let key: String
        let name: String
        let permissions: [String]
        let expires_at: Date?
    }

    @Sendable func create(_ request: Request, context: APIRequestContext) async throws -> Response {
        let principal = try context.requirePrincipal(.admin)
        guard case .object(let body) = try JSONBody.parse(try await JSONBody.read(request, limit: 16 * 1024)) else {
            throw AppError(.invalidJSON, "request body must be a JSON object")
        }
        guard case .string(let name)? = body["name"], (1...255).contains(name.count) else {
            throw AppError(.invalidField, "'name' must be a string of 1 to 255 characters")
        }
        guard case .array(let values)? = body["permissions"], !values.isEmpty else {
            throw AppError(.invalidField, "'permissions' must be a non-empty array of \"read\", \"write\", \"admin\"")
        }
        var permissions: [APIKeyPermission] = []
        for value in values {
            guard case .string(let text) = value, let permission = APIKeyPermission(rawValue: text) else {
                throw AppError(.invalidField, "'permissions' may hold only \"read\", \"write\" and \"admin\"")
            }
            if !permissions.contains(permission) { permissions.append(permission) }
        }
        var expiresAt: Date?
        switch body["expires_at"] {
        case nil, .null?: break
        case .string(let text)?:
            guard let date = Timestamps.parse(text), date > Date() else {
                throw AppError(.invalidField, "'expires_at' must be a future ISO 8601 time with an offset")
            }
            expiresAt = date
        default:
            throw AppError(.invalidField, "'expires_at' must be a string")
        }
        let secret = APIKeySecret.generate()
        let id = UUID()
        let names = permissions.map(\.rawValue)
        try await client.withTransaction(logger: context.logger) { connection in
            try await connection.query(
                """
                INSERT INTO api_keys (org_id, id, key_hash, key_prefix, name, permissions, expires_at)
                VALUES (\(principal.orgID), \(id), \(secret.hash), \(secret.displayPrefix), \(name), \(names)::varchar[], \(expiresAt))
                """, logger: context.logger)
            try await connection.query(
                """
                INSERT INTO audit_log (org_id, actor_type, actor_id, action, target_type, target_id, details)
                VALUES (\(principal.orgID), 'api_key', \(principal.keyID.uuidString.lowercased()), 'api_key.created',
                        'api_key', \(id.uuidString.lowercased()), jsonb_build_object('permissions', \(names)::text[]))
                """, logger: context.logger)
        }
        return try JSONBody.response(
            Created(id: id.uuidString.lowercased(), key: secret.plaintext, name: name, permissions: names, expires_at: expiresAt),
            status: .created)
    }

    @Sendable func list(_ request: Request, context: APIRequestContext) async throws -> Response {
        let principal = try context.requirePrincipal(.admin)
        let rows = try await client.query(
            """
            SELECT id, name, key_prefix, array_to_string(permissions, ','), created_at, expires_at, last_used_at
            FROM api_keys WHERE org_id = \(principal.orgID) AND revoked_at IS NULL ORDER BY created_at
            """, logger: context.logger)
        var keys: [KeyInfo] = []
        for try await (id, name, prefix, permissions, created, expires, used) in rows.decode(
            (UUID, String, String, String, Date, Date?, Date?).self)
        {
            keys.append(
                KeyInfo(
                    id: id.uuidString.lowercased(), name: name, prefix: prefix,
                    permissions: permissions.split(separator: ",").map(String.init), created_at: created,
                    expires_at: expires, last_used_at: used))
        }
        return try JSONBody.response(["keys": keys])
    }

    @Sendable func revoke(_ request: Request, context: APIRequestContext) async throws -> Response {
        let principal = try context.requirePrincipal(.admin)
        guard let id = context.parameters.get("id").flatMap(UUID.init(uuidString:)) else {
            throw AppError(.notFound, "no such API key")
        }
        // Scoped by organization: another tenant's key id is simply not found.
        let revoked = try await client.query(
            """
            UPDATE api_keys SET revoked_at = now()
            WHERE org_id = \(principal.orgID) AND id = \(id) AND revoked_at IS NULL RETURNING id
            """, logger: context.logger
        ).collect()
        guard !revoked.isEmpty else { throw AppError(.notFound, "no such API key") }
        try await client.query(
            """
            INSERT INTO audit_log (org_id, actor_type, actor_id, action, target_type, target_id)
            VALUES (\(principal.orgID), 'api_key', \(principal.keyID.uuidString.lowercased()), 'api_key.revoked',
                    'api_key', \(id.uuidString.lowercased()))
            """, logger: context.logger)
        return Response(status: .noContent)
    }
}
