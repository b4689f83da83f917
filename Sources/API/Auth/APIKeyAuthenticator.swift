import Core
import Foundation
import Logging
import NIOConcurrencyHelpers
import PostgresNIO

/// Resolves `Authorization: Bearer ap_…` to a `Principal`.
///
/// Lookups are cached for one second: a revoked or expired key stops working within a
/// second on every API node without any node telling the others. `last_used_at` is
/// gathered in memory and written once a minute for all keys together.
public final class APIKeyAuthenticator: Sendable {
    struct Entry {
        let principal: Principal?
        let expiresAt: Date?
        let fetchedAt: ContinuousClock.Instant
    }

    let client: PostgresClient
    let cacheLifetime: Duration
    /// How long a lookup waits for a database connection before answering 503.
    let leaseTimeout: Duration
    /// Token → lookup result.
    private let cache = NIOLockedValueBox<[String: Entry]>([:])
    private let used = NIOLockedValueBox<[UUID: Date]>([:])

    public init(client: PostgresClient, cacheLifetime: Duration = .seconds(1), leaseTimeout: Duration = .seconds(5)) {
        self.client = client
        self.cacheLifetime = cacheLifetime
        self.leaseTimeout = leaseTimeout
    }

    /// - Throws: 401 for a missing, unknown, revoked or expired key.
    public func authenticate(authorization: String?, logger: Logger) async throws -> Principal {
        guard let authorization, authorization.utf8.count > 7,
            authorization.utf8.prefix(7).elementsEqual("bearer ".utf8, by: { $0 | 0x20 == $1 })
        else {
            throw AppError(.unauthorized, "missing 'Authorization: Bearer <API key>' header")
        }
        var trimmed = authorization.dropFirst(7)
        while trimmed.first == " " { trimmed.removeFirst() }
        while trimmed.last == " " { trimmed.removeLast() }
        let token = String(trimmed)
        guard token.hasPrefix(APIKeySecret.prefix), token.count < 200 else {
            throw AppError(.unauthorized, "invalid API key")
        }
        let now = ContinuousClock.now
        // Keyed by the token itself, which this process holds anyway while it serves the
        // request: the SHA-256 is computed only when the database is asked.
        var entry = cache.withLockedValue { $0[token] }
        if entry == nil || now - entry!.fetchedAt > cacheLifetime {
            entry = try await fetch(hash: APIKeySecret.hash(token), logger: logger)
            cache.withLockedValue { cache in
                if cache.count > 100_000 { cache.removeAll() }
                cache[token] = entry
            }
        }
        guard let principal = entry?.principal else { throw AppError(.unauthorized, "invalid or revoked API key") }
        if let expiresAt = entry?.expiresAt, expiresAt <= Date() {
            throw AppError(.unauthorized, "API key expired")
        }
        used.withLockedValue { $0[principal.keyID] = Date() }
        return principal
    }

    /// Every authenticated request asks here first once its key's entry is a second old,
    /// so this is where a database that is down must give a prompt 503 rather than wait
    /// for postgres-nio's circuit breaker (about a minute): the lease is bounded, and the
    /// whole lookup too.
    func fetch(hash: String, logger: Logger) async throws -> Entry {
        let row = try await client.withConnection(leaseTimeout: leaseTimeout, deadline: leaseTimeout * 2, logger: logger) {
            connection -> (UUID, UUID, String, Date?, Int32)? in
            let rows = try await connection.query(
                """
                SELECT k.org_id, k.id, array_to_string(k.permissions, ','), k.expires_at, o.retention_days
                FROM api_keys k JOIN organizations o ON o.id = k.org_id
                WHERE k.key_hash = \(hash) AND k.revoked_at IS NULL
                """, logger: logger)
            for try await row in rows.decode((UUID, UUID, String, Date?, Int32).self) { return row }
            return nil
        }
        guard let (orgID, keyID, permissions, expiresAt, retention) = row else {
            return Entry(principal: nil, expiresAt: nil, fetchedAt: .now)
        }
        let set = Set(permissions.split(separator: ",").compactMap { APIKeyPermission(rawValue: String($0)) })
        return Entry(
            principal: Principal(orgID: orgID, keyID: keyID, permissions: set, retentionDays: Int(retention)),
            expiresAt: expiresAt, fetchedAt: .now)
    }

    /// Writes the gathered `last_used_at` values in one statement.
    public func flushLastUsed(logger: Logger) async throws {
        let batch = used.withLockedValue { used -> [UUID: Date] in
            let batch = used
            used.removeAll()
            return batch
        }
        guard !batch.isEmpty else { return }
        let ids = Array(batch.keys), times = ids.map { batch[$0]! }
        try await client.query(
            """
            UPDATE api_keys k SET last_used_at = greatest(k.last_used_at, u.at)
            FROM unnest(\(ids)::uuid[], \(times)::timestamptz[]) AS u(id, at) WHERE k.id = u.id
            """, logger: logger)
    }
}
