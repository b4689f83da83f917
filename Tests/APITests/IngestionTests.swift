@testable import API
import Core
import Foundation
import Hummingbird
import HummingbirdTesting
import Logging
import NIOCore
import PostgresNIO
import TestSupport
import Testing

/// Helpers: an organization with a key, and JSON requests through the real router.
struct IngestionFixture {
    let client: PostgresClient
    let orgID: UUID
    let adminKey: String

    static func make(_ client: PostgresClient, tier: SubscriptionTier = .starter, limit: Int64? = nil) async throws -> IngestionFixture {
        let created = try await OrganizationStore(client: client).create(
            name: "Org", tier: tier, eventLimit: limit, logger: Logger(label: "test"))
        return IngestionFixture(client: client, orgID: created.orgID, adminKey: created.apiKey)
    }

    func count(_ sql: PostgresQuery) async throws -> Int {
        try await client.scalar(sql, as: Int.self) ?? -1
    }
}

func post(
    _ http: some TestClientProtocol, _ uri: String, key: String?, json: String,
    contentType: String = "application/json"
) async throws -> (HTTPResponse.Status, [String: Any]) {
    var headers: HTTPFields = [.contentType: contentType]
    if let key { headers[.authorization] = "Bearer \(key)" }
    return try await http.execute(uri: uri, method: .post, headers: headers, body: ByteBuffer(string: json)) { response in
        let object = (try? JSONSerialization.jsonObject(with: Data(buffer: response.body))) as? [String: Any] ?? [:]
        return (response.status, object)
    }
}

func errorCode(_ body: [String: Any]) -> String? {
    (body["error"] as? [String: Any])?["code"] as? String
}

@Suite struct IngestionTests {
    @Test func singleEventIsStoredAndCounted() async throws {
        try await withTestDatabase { client, _ in
            let fixture = try await IngestionFixture.make(client)
            let app = Application(router: APIServer.makeRouter(.init(client: client)))
            try await app.test(.router) { http in
                let (status, body) = try await post(
                    http, "/api/events", key: fixture.adminKey,
                    json: #"{"name": "signup", "properties": {"plan": "pro", "n": 3}, "user_id": "u1", "timestamp": "2026-11-25T10:00:00+01:00"}"#)
                #expect(status == .accepted)
                #expect(body["accepted"] as? Int == 1)
            }
            let row = try await client.query(
                #"SELECT event_name, properties::text, user_id, "timestamp" FROM events WHERE org_id = \#(fixture.orgID)"#,
                logger: Logger(label: "t")
            ).collect().first?.decode((String, String, String?, Date).self)
            #expect(row?.0 == "signup")
            #expect(row?.1 == #"{"n": 3, "plan": "pro"}"#)
            #expect(row?.2 == "u1")
            #expect(row?.3 == ISO8601DateFormatter().date(from: "2026-11-25T09:00:00Z"))
            #expect(try await fixture.count("SELECT events_used_this_month::int FROM organizations WHERE id = \(fixture.orgID)") == 1)
            #expect(try await fixture.count("SELECT events_count::int FROM usage_periods WHERE org_id = \(fixture.orgID)") == 1)
        }
    }

    /// Each invalid event is named by index and reason; the valid ones are stored.
    @Test func batchReportsEachRejectedEvent() async throws {
        try await withTestDatabase { client, _ in
            let fixture = try await IngestionFixture.make(client)
            let deep = String(repeating: #"{"a":"#, count: 12) + "1" + String(repeating: "}", count: 12)
            let big = String(repeating: "x", count: 33 * 1024)
            let events = [
                #"{"name": "ok"}"#,  // 0
                #"{"properties": {}}"#,  // 1 missing name
                #"{"name": ""}"#,  // 2
                "{\"name\": \"\(String(repeating: "n", count: 256))\"}",  // 3
                #"{"name": 42}"#,  // 4
                #"{"name": "x", "properties": [1, 2]}"#,  // 5
                "{\"name\": \"x\", \"properties\": {\"blob\": \"\(big)\"}}",  // 6
                "{\"name\": \"x\", \"properties\": \(deep)}",  // 7
                #"{"name": "x", "timestamp": "yesterday"}"#,  // 8
                #"{"name": "x", "timestamp": "2999-01-01T00:00:00Z"}"#,  // 9
                #"{"name": "x", "timestamp": "2001-01-01T00:00:00Z"}"#,  // 10
                #"{"name": "x", "id": "not-a-uuid"}"#,  // 11
                #"{"name": "x", "user_id": {"a": 1}}"#,  // 12
                #"{"name": "x", "colour": "red"}"#,  // 13
                #"[1, 2]"#,  // 14
                #"{"name": "ok too", "user_id": 12345, "session_id": "s"}"#,  // 15
            ]
            let app = Application(router: APIServer.makeRouter(.init(client: client)))
            try await app.test(.router) { http in
                let (status, body) = try await post(
                    http, "/api/events/batch", key: fixture.adminKey, json: #"{"events": ["# + events.joined(separator: ",") + "]}")
                #expect(status == .ok)
                #expect(body["accepted"] as? Int == 2)
                let rejected = (body["rejected"] as? [[String: Any]]) ?? []
                let byIndex = Dictionary(uniqueKeysWithValues: rejected.map { ($0["index"] as! Int, $0["code"] as! String) })
                #expect(byIndex == [
                    1: "invalid_name", 2: "invalid_name", 3: "invalid_name", 4: "invalid_name", 5: "invalid_properties",
                    6: "invalid_properties", 7: "invalid_properties", 8: "invalid_timestamp", 9: "invalid_timestamp",
                    10: "invalid_timestamp", 11: "invalid_id", 12: "invalid_user_id", 13: "unknown_field", 14: "invalid_event",
                ])
                #expect(rejected.allSatisfy { !($0["message"] as? String ?? "").isEmpty })
            }
            #expect(try await fixture.count("SELECT count(*)::int FROM events") == 2)
            #expect(try await fixture.count("SELECT count(*)::int FROM events WHERE user_id = '12345'") == 1)
        }
    }

    /// Properties are stored as the client wrote them (PostgreSQL parses the text), so
    /// numbers keep every digit; what jsonb would refuse or bloat is refused per event
    /// and never fails the requests sharing its transaction.
    @Test func propertiesAreStoredAsSentAndCheckedForWhatJsonbRefuses() async throws {
        try await withTestDatabase { client, _ in
            let fixture = try await IngestionFixture.make(client)
            let events = [
                #"{"name": "p", "properties": {"big": 12345678901234567890, "nested": {"a": [1, 2.50]}}}"#,  // 0
                #"{"name": "p", "properties": {"x": "a\u0000b"}}"#,  // 1
                #"{"name": "p", "properties": {"x": 1e500}}"#,  // 2
                #"{"name": "p", "properties":  { "spaced" : "é \u00e9\ud83d\ude00" } }"#,  // 3
            ]
            let app = Application(router: APIServer.makeRouter(.init(client: client)))
            try await app.test(.router) { http in
                let (status, body) = try await post(
                    http, "/api/events/batch", key: fixture.adminKey, json: #"{"events": ["# + events.joined(separator: ",") + "]}")
                #expect(status == .ok)
                #expect(body["accepted"] as? Int == 2)
                let rejected = (body["rejected"] as? [[String: Any]]) ?? []
                #expect(rejected.map { $0["index"] as? Int } == [1, 2])
                #expect(rejected.allSatisfy { $0["code"] as? String == "invalid_properties" })
            }
            let row = try await client.query(
                """
                SELECT properties->>'big', properties #>> '{nested,a,1}' FROM events
                WHERE org_id = \(fixture.orgID) AND properties ? 'big'
                """
            ).collect().first?.decode((String, String).self)
            #expect(row?.0 == "12345678901234567890")
            #expect(row?.1 == "2.50")
            let spaced = try await client.query(
                "SELECT properties->>'spaced' FROM events WHERE org_id = \(fixture.orgID) AND properties ? 'spaced'"
            ).collect().first?.decode(String.self)
            #expect(spaced == "é é😀")
            #expect(try await fixture.count("SELECT events_used_this_month::int FROM organizations WHERE id = \(fixture.orgID)") == 2)
        }
    }

    @Test func malformedRequestsChangeNothing() async throws {
        try await withTestDatabase { client, _ in
            let fixture = try await IngestionFixture.make(client)
            let app = Application(router: APIServer.makeRouter(.init(client: client)))
            try await app.test(.router) { http in
                let key = fixture.adminKey
                var (status, body) = try await post(http, "/api/events/batch", key: key, json: #"{"events": [{"name": "a"}"#)
                #expect(status == .badRequest && errorCode(body) == "invalid_json")
                (status, body) = try await post(http, "/api/events/batch", key: key, json: #"{"items": []}"#)
                #expect(status == .badRequest && errorCode(body) == "invalid_json")
                (status, body) = try await post(http, "/api/events/batch", key: key, json: #"{"events": {"name": "a"}}"#)
                #expect(status == .badRequest)
                let tooMany = #"{"events": ["# + Array(repeating: #"{"name": "a"}"#, count: 1001).joined(separator: ",") + "]}"
                (status, body) = try await post(http, "/api/events/batch", key: key, json: tooMany)
                #expect(status == .contentTooLarge && errorCode(body) == "payload_too_large")
                let huge = #"{"events": [{"name": "a", "properties": {"x": ""# + String(repeating: "y", count: 6 * 1024 * 1024) + #""}}]}"#
                (status, body) = try await post(http, "/api/events/batch", key: key, json: huge)
                #expect(status == .contentTooLarge)
                (status, body) = try await post(http, "/api/events", key: key, json: #"{"name": "a"}"#, contentType: "text/plain")
                #expect(status == .unsupportedMediaType)
                (status, body) = try await post(http, "/api/events", key: key, json: #"{"name": 7}"#)
                #expect(status == .unprocessableContent && errorCode(body) == "invalid_field")
                // Non-UTF-8 bytes.
                var headers: HTTPFields = [.contentType: "application/json", .authorization: "Bearer \(key)"]
                headers[.accept] = "application/json"
                let bad = try await http.execute(
                    uri: "/api/events", method: .post, headers: headers,
                    body: ByteBuffer(bytes: [0x7B, 0x22, 0x6E, 0x22, 0x3A, 0x22, 0xFF, 0xFE, 0x22, 0x7D])) { $0.status }
                #expect(bad == .badRequest)
            }
            #expect(try await fixture.count("SELECT count(*)::int FROM events") == 0)
            #expect(try await fixture.count("SELECT events_used_this_month::int FROM organizations") == 0)
        }
    }

    @Test func retriedEventsAreStoredOnce() async throws {
        try await withTestDatabase { client, _ in
            let fixture = try await IngestionFixture.make(client)
            let ids = (0..<5).map { _ in UUID().uuidString }
            let batch = #"{"events": ["# + ids.map { #"{"name": "retry", "id": "\#($0)"}"# }.joined(separator: ",") + "]}"
            let app = Application(router: APIServer.makeRouter(.init(client: client)))
            try await app.test(.router) { http in
                let (_, first) = try await post(http, "/api/events/batch", key: fixture.adminKey, json: batch)
                #expect(first["accepted"] as? Int == 5)
                let (_, second) = try await post(http, "/api/events/batch", key: fixture.adminKey, json: batch)
                #expect(second["accepted"] as? Int == 0)
                #expect(second["duplicates"] as? Int == 5)
                // Within one batch too.
                let twice = #"{"events": [{"name": "d", "id": "\#(ids[0])"}, {"name": "e", "id": "0b9a2f9e-0000-4000-8000-000000000001"}, {"name": "e", "id": "0b9a2f9e-0000-4000-8000-000000000001"}]}"#
                let (_, third) = try await post(http, "/api/events/batch", key: fixture.adminKey, json: twice)
                #expect(third["accepted"] as? Int == 1)
                #expect(third["duplicates"] as? Int == 2)
                let (singleStatus, single) = try await post(
                    http, "/api/events", key: fixture.adminKey, json: #"{"name": "retry", "id": "\#(ids[1])"}"#)
                #expect(singleStatus == .ok && single["duplicates"] as? Int == 1)
            }
            #expect(try await fixture.count("SELECT count(*)::int FROM events") == 6)
            #expect(try await fixture.count("SELECT events_used_this_month::int FROM organizations") == 6)
        }
    }

    /// 64 clients race for the last of the quota: the accepted total never exceeds the
    /// limit, and counted usage equals stored rows.
    @Test func quotaIsExactUnderConcurrency() async throws {
        try await withTestDatabase { client, _ in
            let fixture = try await IngestionFixture.make(client, tier: .custom, limit: 1000)
            let app = Application(router: APIServer.makeRouter(.init(client: client)))
            let batch = #"{"events": ["# + Array(repeating: #"{"name": "q"}"#, count: 7).joined(separator: ",") + "]}"
            try await app.test(.router) { http in
                let statuses = try await withThrowingTaskGroup(of: (HTTPResponse.Status, String?).self) { group in
                    for _ in 0..<64 {
                        group.addTask {
                            var results: [(HTTPResponse.Status, String?)] = []
                            for _ in 0..<4 {
                                let (status, body) = try await post(http, "/api/events/batch", key: fixture.adminKey, json: batch)
                                results.append((status, errorCode(body)))
                            }
                            return results.last!
                        }
                    }
                    return try await group.reduce(into: [(HTTPResponse.Status, String?)]()) { $0.append($1) }
                }
                #expect(statuses.contains { $0.0 == .tooManyRequests && $0.1 == "quota_exceeded" })
            }
            let stored = try await fixture.count("SELECT count(*)::int FROM events")
            let used = try await fixture.count("SELECT events_used_this_month::int FROM organizations")
            #expect(stored == used)
            #expect(stored <= 1000 && stored > 1000 - 7)
            #expect(stored % 7 == 0)  // batches are all or nothing
        }
    }

    @Test func keysPermissionsRevocationAndExpiry() async throws {
        try await withTestDatabase { client, _ in
            let fixture = try await IngestionFixture.make(client)
            let other = try await IngestionFixture.make(client)
            let app = Application(router: APIServer.makeRouter(.init(client: client)))
            try await app.test(.router) { http in
                var (status, body) = try await post(http, "/api/events", key: nil, json: #"{"name": "a"}"#)
                #expect(status == .unauthorized && errorCode(body) == "unauthorized")
                (status, _) = try await post(http, "/api/events", key: "ap_nonsense", json: #"{"name": "a"}"#)
                #expect(status == .unauthorized)
                // A read-only key cannot post events, nor manage keys.
                (status, body) = try await post(
                    http, "/api/keys", key: fixture.adminKey, json: #"{"name": "reader", "permissions": ["read"]}"#)
                #expect(status == .created)
                let readKey = try #require(body["key"] as? String)
                let readID = try #require(body["id"] as? String)
                (status, body) = try await post(http, "/api/events", key: readKey, json: #"{"name": "a"}"#)
                #expect(status == .forbidden && errorCode(body) == "forbidden")
                (status, _) = try await post(http, "/api/keys", key: readKey, json: #"{"name": "x", "permissions": ["read"]}"#)
                #expect(status == .forbidden)
                (status, body) = try await post(http, "/api/keys", key: fixture.adminKey, json: #"{"name": "x", "permissions": ["root"]}"#)
                #expect(status == .unprocessableContent)
                // Listing shows this organization's keys, never a hash or a secret.
                let listing = try await http.execute(
                    uri: "/api/keys", method: .get, headers: [.authorization: "Bearer \(fixture.adminKey)"]) { String(buffer: $0.body) }
                #expect(listing.contains(readID) && !listing.contains(readKey) && !listing.contains("key_hash"))
                // Another organization's key id is not found.
                let foreign = try await http.execute(
                    uri: "/api/keys/\(readID)", method: .delete, headers: [.authorization: "Bearer \(other.adminKey)"]) { $0.status }
                #expect(foreign == .notFound)
                // Revoked: refused within a second.
                let revoked = try await http.execute(
                    uri: "/api/keys/\(readID)", method: .delete, headers: [.authorization: "Bearer \(fixture.adminKey)"]) { $0.status }
                #expect(revoked == .noContent)
                try await Task.sleep(for: .milliseconds(1100))
                let afterRevoke = try await http.execute(
                    uri: "/api/keys", method: .get, headers: [.authorization: "Bearer \(readKey)"]) { $0.status }
                #expect(afterRevoke == .unauthorized)
                // Expiry.
                (status, body) = try await post(
                    http, "/api/keys", key: fixture.adminKey,
                    json: #"{"name": "brief", "permissions": ["write"], "expires_at": "\#(Timestamps.format(Date().addingTimeInterval(1.5)))"}"#)
                let brief = try #require(body["key"] as? String)
                (status, _) = try await post(http, "/api/events", key: brief, json: #"{"name": "a"}"#)
                #expect(status == .accepted)
                try await Task.sleep(for: .milliseconds(1600))
                (status, body) = try await post(http, "/api/events", key: brief, json: #"{"name": "a"}"#)
                #expect(status == .unauthorized)
            }
            // Isolation: the other organization has no events.
            #expect(try await fixture.count("SELECT count(*)::int FROM events WHERE org_id = \(other.orgID)") == 0)
        }
    }

    @Test func eventsLandInTheRightPartitionOrTheDefault() async throws {
        try await withTestDatabase { client, _ in
            let fixture = try await IngestionFixture.make(client)
            let app = Application(router: APIServer.makeRouter(.init(client: client)))
            let old = Timestamps.format(Date().addingTimeInterval(-300 * 86_400))
            try await app.test(.router) { http in
                let (status, body) = try await post(
                    http, "/api/events/batch", key: fixture.adminKey,
                    json: #"{"events": [{"name": "a", "timestamp": "2026-10-31T23:59:59.999Z"}, {"name": "b", "timestamp": "2026-11-01T00:00:00Z"}, {"name": "c", "timestamp": "\#(old)"}]}"#)
                #expect(status == .ok && body["accepted"] as? Int == 3)
            }
            // No partitions exist yet in a fresh test database: all three are in the default one.
            #expect(try await fixture.count("SELECT count(*)::int FROM events_default") == 3)
        }
    }
}

@Suite struct EventQueryTests {
    /// Name-filtered pages walk each name's index and merge: the same order (timestamp,
    /// then id, newest first) as the unfiltered listing, also when many events share a
    /// timestamp across a page boundary.
    @Test func nameFilteredPagesMatchTheUnfilteredOrderAcrossTies() async throws {
        try await withTestDatabase { client, _ in
            let fixture = try await IngestionFixture.make(client)
            let app = Application(router: APIServer.makeRouter(.init(client: client)))
            let stamps = Array(repeating: "2026-11-20T11:00:00Z", count: 7) + Array(repeating: "2026-11-20T10:59:00Z", count: 3)
                + Array(repeating: "2026-11-20T10:58:00Z", count: 2)
            // Ids in an order unrelated to insertion, so an index's order among equal
            // timestamps (insertion) differs from the listing's (id).
            let idOrder = [5, 0, 11, 3, 9, 1, 7, 10, 2, 8, 4, 6]
            let events = stamps.enumerated().map { i, stamp in
                let id = String(format: "00000000-0000-4000-8000-%012d", idOrder[i])
                return #"{"name": "\#((7..<10).contains(i) ? "other" : "tie")", "id": "\#(id)", "properties": {"i": \#(i)}, "timestamp": "\#(stamp)"}"#
            }
            try await app.test(.router) { http in
                _ = try await post(http, "/api/events/batch", key: fixture.adminKey, json: #"{"events": ["# + events.joined(separator: ",") + "]}")
                _ = try await post(http, "/api/events", key: fixture.adminKey, json: #"{"name": "third", "timestamp": "2026-11-20T10:59:30Z"}"#)
                func pages(_ filter: String) async throws -> [Int] {
                    var seen: [Int] = []
                    var uri = "/api/events?limit=3\(filter)"
                    while true {
                        let body = try await http.execute(
                            uri: uri, method: .get, headers: [.authorization: "Bearer \(fixture.adminKey)"]
                        ) { (try? JSONSerialization.jsonObject(with: Data(buffer: $0.body))) as? [String: Any] ?? [:] }
                        let page = body["events"] as? [[String: Any]] ?? []
                        #expect(page.count <= 3)
                        seen += page.map { ($0["properties"] as? [String: Any])?["i"] as? Int ?? -1 }
                        guard let cursor = body["next_cursor"] as? String else { return seen }
                        uri = "/api/events?limit=3\(filter)&cursor=\(cursor.addingPercentEncoding(withAllowedCharacters: .alphanumerics)!)"
                    }
                }
                // Newest first by (timestamp, id), worked out from the data itself.
                let expected = stamps.indices.sorted { (stamps[$0], idOrder[$0]) > (stamps[$1], idOrder[$1]) }
                #expect(try await pages("").filter { $0 >= 0 } == expected)  // "third" has no i
                // Many newer events of another name make PostgreSQL take the name index.
                try await client.query(
                    """
                    INSERT INTO events (org_id, event_name, "timestamp")
                    SELECT \(fixture.orgID), 'bulk', timestamptz '2026-11-20T12:00:00Z' + g * interval '1 ms'
                    FROM generate_series(1, 20000) g
                    """)
                try await client.query("ANALYZE events")
                #expect(try await pages("&event=tie,other") == expected)
                #expect(try await pages("&event=tie") == expected.filter { !(7..<10).contains($0) })
                #expect(try await pages("&event=other&event=other") == expected.filter { (7..<10).contains($0) })
            }
        }
    }

    @Test func listsNewestFirstWithFiltersAndCursors() async throws {
        try await withTestDatabase { client, _ in
            let fixture = try await IngestionFixture.make(client)
            let other = try await IngestionFixture.make(client)
            let app = Application(router: APIServer.makeRouter(.init(client: client)))
            let events = (0..<25).map { i in
                #"{"name": "\#(i % 2 == 0 ? "view" : "click")", "properties": {"plan": "\#(i % 3 == 0 ? "pro" : "free")", "i": \#(i)}, "timestamp": "2026-11-20T10:\#(String(format: "%02d", i)):00Z"}"#
            }
            try await app.test(.router) { http in
                _ = try await post(http, "/api/events/batch", key: fixture.adminKey, json: #"{"events": ["# + events.joined(separator: ",") + "]}")
                _ = try await post(http, "/api/events/batch", key: other.adminKey, json: #"{"events": [{"name": "view", "timestamp": "2026-11-20T10:30:00Z"}]}"#)
                func get(_ uri: String, key: String) async throws -> (HTTPResponse.Status, [String: Any]) {
                    try await http.execute(uri: uri, method: .get, headers: [.authorization: "Bearer \(key)"]) { response in
                        (response.status, (try? JSONSerialization.jsonObject(with: Data(buffer: response.body))) as? [String: Any] ?? [:])
                    }
                }
                // Pages of 10, newest first, no gaps or repeats, only this organization's events.
                var seen: [Int] = []
                var uri = "/api/events?limit=10"
                while true {
                    let (status, body) = try await get(uri, key: fixture.adminKey)
                    #expect(status == .ok)
                    let page = body["events"] as? [[String: Any]] ?? []
                    seen += page.compactMap { ($0["properties"] as? [String: Any])?["i"] as? Int }
                    guard let cursor = body["next_cursor"] as? String else { break }
                    uri = "/api/events?limit=10&cursor=\(cursor.addingPercentEncoding(withAllowedCharacters: .alphanumerics)!)"
                }
                #expect(seen == Array((0..<25).reversed()))
                // Names, time range and property filters (bound, never spliced).
                let (_, filtered) = try await get(
                    "/api/events?event=view&property.plan=pro&start=2026-11-20T10:05:00Z&end=2026-11-20T10:20:00Z", key: fixture.adminKey)
                let found = (filtered["events"] as? [[String: Any]] ?? []).compactMap { ($0["properties"] as? [String: Any])?["i"] as? Int }
                #expect(found == [18, 12, 6])
                let (_, injected) = try await get("/api/events?property.plan'%20OR%201=1--=x", key: fixture.adminKey)
                #expect((injected["events"] as? [Any])?.isEmpty == true)
                let (badLimit, _) = try await get("/api/events?limit=5000", key: fixture.adminKey)
                #expect(badLimit == .unprocessableContent)
                let (badCursor, _) = try await get("/api/events?cursor=garbage", key: fixture.adminKey)
                #expect(badCursor == .unprocessableContent)
                // Stats per event name per day, in the requested zone: 10:00-10:24 UTC is
                // the 20th in UTC but the 21st in Pacific/Kiritimati (UTC+14).
                let (_, utc) = try await get("/api/events/stats?start=2026-11-19T00:00:00Z&end=2026-11-22T00:00:00Z", key: fixture.adminKey)
                let utcRows = utc["stats"] as? [[String: Any]] ?? []
                #expect(utcRows.count == 2)
                #expect(utcRows.allSatisfy { $0["day"] as? String == "2026-11-20" })
                #expect(utcRows.first { $0["event"] as? String == "view" }?["count"] as? Int == 13)
                let (_, kiritimati) = try await get(
                    "/api/events/stats?start=2026-11-19T00:00:00Z&end=2026-11-22T00:00:00Z&tz=Pacific/Kiritimati", key: fixture.adminKey)
                #expect((kiritimati["stats"] as? [[String: Any]] ?? []).allSatisfy { $0["day"] as? String == "2026-11-21" })
                let (badZone, _) = try await get("/api/events/stats?tz=Mars/Base", key: fixture.adminKey)
                #expect(badZone == .unprocessableContent)
            }
        }
    }
}
