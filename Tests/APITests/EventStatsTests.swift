@testable import API
@testable import Core
import Foundation
import Hummingbird
import HummingbirdTesting
import Logging
import NIOCore
import PostgresNIO
import TestSupport
import Testing

/// `GET /api/events/stats` reads the `events_by_name` rollups for whole minutes and raw
/// rows for the rest: its counts must equal a plain count of the rows, in every zone and
/// for ranges that start and end anywhere.
@Suite struct EventStatsTests {
    static let logger = Logger(label: "test.stats")

    /// Counts per (event, local day) by counting rows: what the endpoint must answer.
    static func rawCounts(
        _ client: PostgresClient, orgID: UUID, start: Date, end: Date, tz: String, names: [String] = []
    ) async throws -> [EventDayCounts.Count] {
        var counts: [EventDayCounts.Count] = []
        for try await (name, day, count) in try await client.query(
            """
            SELECT event_name, to_char(("timestamp" AT TIME ZONE \(tz))::date, 'YYYY-MM-DD'), count(*)::int8
            FROM events
            WHERE org_id = \(orgID) AND "timestamp" >= \(start) AND "timestamp" < \(end)
              AND (\(names.isEmpty) OR event_name = ANY(\(names)::text[]))
            GROUP BY 1, 2 ORDER BY 2, 1
            """, logger: logger
        ).decode((String, String, Int64).self) {
            counts.append(.init(event: name, day: day, count: count))
        }
        return counts
    }

    /// Events at random instants (down to the microsecond) over the three days before `now`.
    static func insertEvents(_ client: PostgresClient, orgID: UUID, count: Int, seed: Double, now: Date) async throws {
        try await client.query("SELECT setseed(\(seed))", logger: logger)
        try await client.query(
            """
            INSERT INTO events (org_id, event_name, properties, "timestamp")
            SELECT \(orgID), (ARRAY['signup', 'view', 'purchase'])[1 + floor(random() * 3)::int], '{}',
                   \(now)::timestamptz - random() * interval '3 days'
            FROM generate_series(1, \(count))
            """, logger: logger)
    }

    @Test func countsFromRollupsEqualCountedRowsInEveryZoneAndRange() async throws {
        try await withTestDatabase { client, _ in
            let fixture = try await IngestionFixture.make(client)
            let other = try await IngestionFixture.make(client)
            let now = Date()
            try await Self.insertEvents(client, orgID: fixture.orgID, count: 3000, seed: 0.25, now: now)
            try await Self.insertEvents(client, orgID: other.orgID, count: 500, seed: 0.5, now: now)
            try await drainRollups(client)
            // Folded minutes get more rows that are not folded yet.
            try await Self.insertEvents(client, orgID: fixture.orgID, count: 700, seed: 0.75, now: now)
            let folded = try await client.scalar(
                "SELECT count(*)::int FROM events WHERE org_id = \(fixture.orgID) AND ingest_xid < (SELECT watermark FROM rollup_state WHERE shard = 0)",
                as: Int.self)
            #expect(folded == 3000)

            let reader = EventDayCounts(client: client)
            let zones = ["UTC", "Europe/Berlin", "Asia/Kathmandu", "America/St_Johns", "Pacific/Kiritimati", "America/Santiago"]
            var ranges: [(Date, Date)] = [(now.addingTimeInterval(-4 * 86_400), now.addingTimeInterval(60))]
            var generator = SystemRandomNumberGenerator()
            for _ in 0..<6 {
                // Ends anywhere, down to the microsecond: partial minutes at both ends.
                let a = now.addingTimeInterval(-Double.random(in: 0...(3.2 * 86_400), using: &generator))
                let b = now.addingTimeInterval(-Double.random(in: 0...(3.2 * 86_400), using: &generator))
                ranges.append((min(a, b), max(a, b).addingTimeInterval(90)))
            }
            // Whole hours and minutes, and a span shorter than a minute.
            let hour = Granularity.hour.bucket(of: now)
            ranges.append((hour.addingTimeInterval(-30 * 3600), hour.addingTimeInterval(-3600)))
            ranges.append((hour.addingTimeInterval(-7 * 60), hour.addingTimeInterval(-2 * 60)))
            ranges.append((now.addingTimeInterval(-86_400), now.addingTimeInterval(-86_400 + 20)))

            for tz in zones {
                for (start, end) in ranges {
                    let expected = try await Self.rawCounts(client, orgID: fixture.orgID, start: start, end: end, tz: tz)
                    let (counts, source) = try await reader.counts(
                        orgID: fixture.orgID, start: start, end: end, timeZone: tz, names: [], logger: Self.logger)
                    #expect(counts == expected, "tz \(tz), \(start) – \(end)")
                    // Under a minute there is no whole minute to read from rollups.
                    #expect(source == (end.timeIntervalSince(start) < 60 ? .raw : .rollups))
                }
            }
            let (start, end) = ranges[0]
            let named = try await reader.counts(
                orgID: fixture.orgID, start: start, end: end, timeZone: "Asia/Kathmandu", names: ["view", "nothing"],
                logger: Self.logger)
            #expect(
                named.counts
                    == (try await Self.rawCounts(
                        client, orgID: fixture.orgID, start: start, end: end, tz: "Asia/Kathmandu", names: ["view", "nothing"])))
            #expect(named.counts.allSatisfy { $0.event == "view" } && !named.counts.isEmpty)

            // The rollups are what is read: a folded row deleted behind their back still counts.
            try await client.query(
                """
                DELETE FROM events WHERE ctid = (SELECT ctid FROM events WHERE org_id = \(fixture.orgID)
                  AND ingest_xid < (SELECT watermark FROM rollup_state WHERE shard = 0)
                  AND "timestamp" < \(now.addingTimeInterval(-7200)) LIMIT 1)
                """, logger: Self.logger)
            let afterDelete = try await reader.counts(
                orgID: fixture.orgID, start: start, end: end, timeZone: "UTC", names: [], logger: Self.logger)
            let rawAfterDelete = try await Self.rawCounts(client, orgID: fixture.orgID, start: start, end: end, tz: "UTC")
            #expect(afterDelete.counts.reduce(0) { $0 + $1.count } == rawAfterDelete.reduce(0) { $0 + $1.count } + 1)

            // Until the backfill is done, rows are counted.
            try await client.query(
                "UPDATE metrics SET backfill_done = false WHERE org_id = \(fixture.orgID) AND builtin = 'events_by_name'",
                logger: Self.logger)
            let unfinished = try await reader.counts(
                orgID: fixture.orgID, start: start, end: end, timeZone: "UTC", names: [], logger: Self.logger)
            #expect(unfinished.source == .raw)
            #expect(unfinished.counts == rawAfterDelete)
            // Counted by name through the (organization, name) key index.
            let unfinishedNamed = try await reader.counts(
                orgID: fixture.orgID, start: start, end: end, timeZone: "UTC", names: ["view", "nothing"], logger: Self.logger)
            #expect(unfinishedNamed.source == .raw)
            #expect(unfinishedNamed.counts == rawAfterDelete.filter { $0.event == "view" } && !unfinishedNamed.counts.isEmpty)
            try await client.query(
                "UPDATE metrics SET backfill_done = true WHERE org_id = \(fixture.orgID) AND builtin = 'events_by_name'",
                logger: Self.logger)

            // Over HTTP: the same numbers, only this organization's, and a zone PostgreSQL
            // does not know is a 422 like any bad zone.
            let app = Application(router: APIServer.makeRouter(.init(client: client)))
            try await app.test(.router) { http in
                let query = "start=\(Timestamps.format(start))&end=\(Timestamps.format(end))&tz=America/St_Johns"
                let (status, body) = try await send(http, .get, "/api/events/stats?\(query)", key: fixture.adminKey)
                #expect(status == .ok)
                let total = (body["stats"] as? [[String: Any]] ?? []).reduce(0) { $0 + ($1["count"] as? Int ?? 0) }
                #expect(total == afterDelete.counts.reduce(0) { $0 + Int($1.count) })
                let (_, otherBody) = try await send(http, .get, "/api/events/stats?\(query)", key: other.adminKey)
                let otherTotal = (otherBody["stats"] as? [[String: Any]] ?? []).reduce(0) { $0 + ($1["count"] as? Int ?? 0) }
                #expect(otherTotal == 500)
            }
        }
    }

    @Test func piecesTileEachLocalDayWithTheCoarsestBuckets() {
        func at(_ text: String) -> Date { Timestamps.parse(text)! }
        // Kathmandu is UTC+5:45: its midnight is 18:15 UTC, so a day is minutes, hours, minutes.
        let midnights = [("2026-11-20", at("2026-11-19T18:15:00Z")), ("2026-11-21", at("2026-11-20T18:15:00Z"))]
        let pieces = EventDayCounts.pieces(
            wholeStart: at("2026-11-19T18:15:00Z"), wholeEnd: at("2026-11-20T18:15:00Z"), midnights: midnights)
        #expect(
            pieces == [
                .init(granularity: .hour, from: at("2026-11-19T19:00:00Z"), to: at("2026-11-20T18:00:00Z"), day: "2026-11-20"),
                .init(granularity: .minute, from: at("2026-11-19T18:15:00Z"), to: at("2026-11-19T19:00:00Z"), day: "2026-11-20"),
                .init(granularity: .minute, from: at("2026-11-20T18:00:00Z"), to: at("2026-11-20T18:15:00Z"), day: "2026-11-20"),
            ])
        // UTC days spanning two days: whole days, then the hours and minutes of the last.
        let utc = EventDayCounts.pieces(
            wholeStart: at("2026-11-19T00:00:00Z"), wholeEnd: at("2026-11-20T10:30:00Z"),
            midnights: [("2026-11-19", at("2026-11-19T00:00:00Z")), ("2026-11-20", at("2026-11-20T00:00:00Z")),
                        ("2026-11-21", at("2026-11-21T00:00:00Z"))])
        #expect(
            utc == [
                .init(granularity: .day, from: at("2026-11-19T00:00:00Z"), to: at("2026-11-20T00:00:00Z"), day: "2026-11-19"),
                .init(granularity: .hour, from: at("2026-11-20T00:00:00Z"), to: at("2026-11-20T10:00:00Z"), day: "2026-11-20"),
                .init(granularity: .minute, from: at("2026-11-20T10:00:00Z"), to: at("2026-11-20T10:30:00Z"), day: "2026-11-20"),
            ])
        // A local midnight off the minute (historic offsets): no rollup plan.
        #expect(
            EventDayCounts.pieces(
                wholeStart: at("2026-11-19T00:00:00Z"), wholeEnd: at("2026-11-21T00:00:00Z"),
                midnights: [("2026-11-19", at("2026-11-18T23:59:30Z")), ("2026-11-20", at("2026-11-19T23:59:30Z")),
                            ("2026-11-21", at("2026-11-20T23:59:30Z"))]) == nil)
    }
}
