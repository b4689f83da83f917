import Foundation
import Logging
import PostgresNIO

/// Creates organizations and their first API key.
public struct OrganizationStore: Sendable {
    public let client: PostgresClient

    public init(client: PostgresClient) {
        self.client = client
    }

    public struct Created: Sendable, Codable {
        public let orgID: UUID
        /// Shown once; only its hash is stored.
        public let apiKey: String

        enum CodingKeys: String, CodingKey {
            case orgID = "org_id"
            case apiKey = "api_key"
        }

        public func encode(to encoder: any Encoder) throws {
            var container = encoder.container(keyedBy: CodingKeys.self)
            try container.encode(orgID.uuidString.lowercased(), forKey: .orgID)
            try container.encode(apiKey, forKey: .apiKey)
        }
    }

    /// Creates an organization on `tier` with an admin API key.
    /// - Parameter eventLimit: overrides the tier's monthly event limit (required for `custom`).
    public func create(
        name: String, tier: SubscriptionTier, eventLimit: Int64? = nil, logger: Logger
    ) async throws -> Created {
        let trimmed = name.trimmingCharacters(in: .whitespacesAndNewlines)
        guard !trimmed.isEmpty, trimmed.count <= 255 else {
            throw AppError(.invalidField, "organization name must be 1 to 255 characters")
        }
        guard let limit = eventLimit ?? tier.defaultMonthlyEventLimit else {
            throw AppError(.invalidField, "the custom tier needs an explicit monthly event limit")
        }
        guard limit >= 0 else { throw AppError(.invalidField, "the monthly event limit cannot be negative") }
        let key = APIKeySecret.generate()
        let orgID = UUID()
        try await client.withTransaction(logger: logger) { connection in
            try await connection.query(
                """
                INSERT INTO organizations (id, name, subscription_tier, monthly_event_limit)
                VALUES (\(orgID), \(trimmed), \(tier.rawValue), \(limit))
                """, logger: logger)
            try await connection.query(
                """
                INSERT INTO usage_periods (org_id, period_start, period_end, event_limit)
                SELECT id, billing_cycle_start, (billing_cycle_start + interval '1 month')::date, monthly_event_limit
                FROM organizations WHERE id = \(orgID)
                """, logger: logger)
            try await connection.query(
                """
                INSERT INTO api_keys (org_id, key_hash, key_prefix, name, permissions)
                VALUES (\(orgID), \(key.hash), \(key.displayPrefix), 'initial admin key', ARRAY['read', 'write', 'admin'])
                """, logger: logger)
            try await connection.query(
                """
                INSERT INTO audit_log (org_id, actor_type, action, target_type, target_id, details)
                VALUES (\(orgID), 'system', 'organization.created', 'organization', \(orgID.uuidString.lowercased()),
                        jsonb_build_object('tier', \(tier.rawValue)::text, 'monthly_event_limit', \(limit)::bigint))
                """, logger: logger)
        }
        return Created(orgID: orgID, apiKey: key.plaintext)
    }
}
