import Core
import Foundation
import Logging
import PostgresNIO
import TestSupport
import Testing

@Suite struct OrganizationStoreTests {
    @Test func storesOnlyTheHashOfTheKey() async throws {
        try await withTestDatabase { client, _ in
            let created = try await OrganizationStore(client: client).create(
                name: "Acme", tier: .starter, logger: Logger(label: "test"))
            #expect(created.apiKey.hasPrefix("ap_"))
            #expect(created.apiKey.count > 40)
            let hash = try await client.scalar(
                "SELECT key_hash FROM api_keys WHERE org_id = \(created.orgID)", as: String.self)
            #expect(hash == APIKeySecret.hash(created.apiKey))
            // The plaintext appears in no column of any row.
            let leaks = try await client.scalar(
                "SELECT count(*)::int FROM api_keys k WHERE strpos(row_to_json(k)::text, \(created.apiKey)) > 0",
                as: Int.self)
            #expect(leaks == 0)
            let permissions = try await client.scalar(
                "SELECT array_to_string(permissions, ',') FROM api_keys WHERE org_id = \(created.orgID)", as: String.self)
            #expect(permissions == "read,write,admin")
        }
    }

    @Test(arguments: [
        (SubscriptionTier.starter, Int64(100_000)), (.professional, 1_000_000), (.enterprise, 10_000_000),
    ])
    func tierSetsTheMonthlyLimit(tier: SubscriptionTier, limit: Int64) async throws {
        try await withTestDatabase { client, _ in
            let created = try await OrganizationStore(client: client).create(name: "Tiered", tier: tier, logger: Logger(label: "test"))
            let stored = try await client.scalar(
                "SELECT monthly_event_limit FROM organizations WHERE id = \(created.orgID)", as: Int64.self)
            #expect(stored == limit)
            let period = try await client.scalar(
                "SELECT event_limit FROM usage_periods WHERE org_id = \(created.orgID)", as: Int64.self)
            #expect(period == limit)
        }
    }

    @Test func customTierNeedsALimit() async throws {
        try await withTestDatabase { client, _ in
            let store = OrganizationStore(client: client)
            await #expect(throws: AppError.self) {
                try await store.create(name: "Big", tier: .custom, logger: Logger(label: "test"))
            }
            let created = try await store.create(name: "Big", tier: .custom, eventLimit: 50_000_000, logger: Logger(label: "test"))
            let stored = try await client.scalar(
                "SELECT monthly_event_limit FROM organizations WHERE id = \(created.orgID)", as: Int64.self)
            #expect(stored == 50_000_000)
            await #expect(throws: AppError.self) {
                try await store.create(name: "   ", tier: .starter, logger: Logger(label: "test"))
            }
            #expect(try await client.scalar("SELECT count(*)::int FROM organizations", as: Int.self) == 1)
        }
    }

    @Test func keysAreUniqueAndBase62() {
        let keys = (0..<200).map { _ in APIKeySecret.generate().plaintext }
        #expect(Set(keys).count == keys.count)
        #expect(keys.allSatisfy { $0.dropFirst(3).allSatisfy { $0.isLetter || $0.isNumber } })
    }
}
