import Core
import Foundation
@testable import Jobs
import Logging
import PostgresNIO
@testable import Scheduler
import TestSupport
import Testing

/// Rollups against a real PostgreSQL: every value is compared with the same aggregate
/// computed by SQL over the raw events.
@Suite struct RollupTests {
    let logger = Logger(label: "test.rollups")

    /// A metric written the way the API writes one (horizon = the writing transaction).
    /// One 'view' event per transaction, a commit every 5 ms, for `duration`.
    func commitViews(_ client: PostgresClient, org: UUID, for duration: Duration) async throws {
        let clock = ContinuousClock()
        let until = clock.now + duration
        while clock.now < until {
            try await client.query(
                "INSERT INTO events (org_id, event_name, properties, \"timestamp\") VALUES (\(org), 'view', '{}', now())",
                logger: logger)
            try await Task.sleep(for: .milliseconds(5))
        }
    }

    static func createMetric(
        _ client: PostgresClient, org: UUID, name: String, event: String, aggregation: String, property: String? = nil,
        filters: String = "[]", groupBy: String? = nil, backfillDone: Bool = true
    ) async throws -> UUID {
        let id = UUID()
        try await client.query(
            """
            INSERT INTO metrics (org_id, id, name, event_name, aggregation, property, filters, group_by, horizon_xid, backfill_done)
            VALUES (\(org), \(id), \(name), \(event), \(aggregation), \(property), \(filters)::jsonb, \(groupBy),
                    pg_current_xact_id()::text::bigint, \(backfillDone))
            """, logger: Logger(label: "test"))
        return id
    }

    /// Runs fresh rollups until every committed event is folded.
    static func drain(_ client: PostgresClient, logger: Logger) async throws {
        while true {
            let result = try await RollupJob.runOnce(client: client, logger: logger)
            guard case .folded(let watermark, _, _) = result else { continue }
            if try await !RollupJob.hasRows(atOrAbove: watermark, client: client, logger: logger) { return }
            try await Task.sleep(for: .milliseconds(20))
        }
    }

    /// (granularity, bucket, group) -> (count, sum, value) for one metric.
    static func rollups(_ client: PostgresClient, metric: UUID) async throws -> [String: (Int64, Double, Double?)] {
        var result: [String: (Int64, Double, Double?)] = [:]
        let rows = try await client.query(
            """
            SELECT granularity || ' ' || to_char(bucket_start AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI') || ' ' || group_value,
                   count, sum, value
            FROM rollups WHERE metric_id = \(metric)
            """, logger: Logger(label: "test"))
        for try await (key, count, sum, value) in rows.decode((String, Int64, Double, Double?).self) {
            result[key] = (count, sum, value)
        }
        return result
    }

    /// The same keys computed from raw events with plain SQL.
    static func expected(
        _ client: PostgresClient, org: UUID, event: String, valueSQL: String, filterSQL: String = "true",
        groupSQL: String? = nil
    ) async throws -> [String: (Int64, Double)] {
        var result: [String: (Int64, Double)] = [:]
        for granularity in ["minute", "hour", "day"] {
            for grouped in groupSQL == nil ? [false] : [false, true] {
                let group = grouped ? "'=' || \(groupSQL!)" : "''"
                let sql = """
                    SELECT '\(granularity) ' || to_char(date_trunc('\(granularity)', "timestamp" AT TIME ZONE 'UTC'), 'YYYY-MM-DD HH24:MI')
                           || ' ' || \(group), count(v)::int8, coalesce(sum(v), 0)::float8
                    FROM (SELECT *, \(valueSQL) AS v FROM events WHERE org_id = '\(org.uuidString)'
                          AND (event_name = '\(event)' OR '\(event)' = '*') AND \(filterSQL)) e
                    WHERE v IS NOT NULL GROUP BY 1
                    """
                let rows = try await client.query(PostgresQuery(unsafeSQL: sql), logger: Logger(label: "test"))
                for try await (key, count, sum) in rows.decode((String, Int64, Double).self) {
                    result[key] = (count, sum)
                }
            }
        }
        return result
    }

    static func compare(
        _ actual: [String: (Int64, Double, Double?)], _ expected: [String: (Int64, Double)], sums: Bool = true
    ) {
        #expect(Set(actual.keys) == Set(expected.keys))
        for (key, value) in expected {
            guard let got = actual[key] else { continue }
            #expect(got.0 == value.0, "count of \(key)")
            if sums { #expect(abs(got.1 - value.1) <= 1e-6 * max(1, abs(value.1)), "sum of \(key)") }
        }
    }

    /// Many writers with interleaved, slow-to-commit transactions (some rolled back),
    /// late timestamps, and rollups running all the while: every event counted once.
    @Test func everyEventIsCountedExactlyOnceUnderConcurrency() async throws {
        try await withTestDatabase { client, _ in
            let org = try await OrganizationStore(client: client).create(name: "R", tier: .starter, logger: logger).orgID
            let count = try await Self.createMetric(client, org: org, name: "Purchases", event: "purchase", aggregation: "count")
            let revenue = try await Self.createMetric(
                client, org: org, name: "Revenue", event: "purchase", aggregation: "sum", property: "amount",
                filters: #"[{"property": "plan", "op": "in", "value": ["pro", "team"]}]"#, groupBy: "plan")
            let users = try await Self.createMetric(client, org: org, name: "Buyers", event: "purchase", aggregation: "unique_users")
            let p95 = try await Self.createMetric(
                client, org: org, name: "Amount p95", event: "purchase", aggregation: "p95", property: "amount")

            let base = Date().addingTimeInterval(-3 * 86400)
            let stop = ManagedAtomicFlag()
            // Rollups run continuously while writers write.
            let roller = Task {
                while !stop.isSet {
                    _ = try await RollupJob.runOnce(client: client, logger: logger)
                    try await Task.sleep(for: .milliseconds(5))
                }
            }
            try await withThrowingTaskGroup(of: Void.self) { group in
                for writer in 0..<12 {
                    group.addTask {
                        var generator = SystemRandomNumberGenerator()
                        for round in 0..<8 {
                            do {
                            try await client.withTransaction(logger: logger) { connection in
                                for k in 0..<25 {
                                    // Late data: timestamps scattered over three days, out of order.
                                    let offset = Double(Int.random(in: 0..<(3 * 86400), using: &generator))
                                    let plan = ["free", "pro", "team"][(writer + k) % 3]
                                    let amount = Double(Int.random(in: 1...100_000, using: &generator)) / 100
                                    try await connection.query(
                                        """
                                        INSERT INTO events (org_id, event_name, properties, user_id, "timestamp")
                                        VALUES (\(org), 'purchase',
                                                jsonb_build_object('plan', \(plan)::text, 'amount', \(amount)::float8),
                                                \("u\((writer * 31 + k * 7 + round) % 150)"), \(base.addingTimeInterval(offset)))
                                        """, logger: logger)
                                }
                                // Slow to commit: rollups run while this transaction holds its rows.
                                try await Task.sleep(for: .milliseconds(Int.random(in: 0...150, using: &generator)))
                                if (writer + round) % 7 == 3 { throw RolledBack() }
                            }
                            } catch let error as PostgresTransactionError where error.closureError is RolledBack {}
                        }
                    }
                }
                while let result = await group.nextResult() {
                    if case .failure(let error) = result { throw error }
                }
            }
            stop.set()
            try await roller.value
            try await Self.drain(client, logger: logger)

            let stored = try await client.scalar("SELECT count(*)::int FROM events WHERE org_id = \(org)", as: Int.self)!
            #expect(stored > 0 && stored < 12 * 8 * 25)  // some transactions rolled back

            Self.compare(
                try await Self.rollups(client, metric: count),
                try await Self.expected(client, org: org, event: "purchase", valueSQL: "1::float8"), sums: false)
            Self.compare(
                try await Self.rollups(client, metric: revenue),
                try await Self.expected(
                    client, org: org, event: "purchase", valueSQL: "(properties->>'amount')::float8",
                    filterSQL: "properties->>'plan' IN ('pro', 'team')", groupSQL: "(properties->>'plan')"))

            // Unique users: exact for small sets, per bucket.
            let uniques = try await client.query(
                """
                SELECT count(*)::int FROM (
                    SELECT date_trunc('hour', "timestamp" AT TIME ZONE 'UTC') AS h, count(DISTINCT user_id) AS n
                    FROM events WHERE org_id = \(org) GROUP BY 1) x
                JOIN rollups r ON r.metric_id = \(users) AND r.granularity = 'hour'
                    AND r.bucket_start = x.h AT TIME ZONE 'UTC' AND r.group_value = ''
                WHERE r.value = x.n
                """, logger: logger
            ).collect().first?.decode(Int.self)
            let hours = try await client.scalar(
                "SELECT count(DISTINCT date_trunc('hour', \"timestamp\" AT TIME ZONE 'UTC'))::int FROM events WHERE org_id = \(org)",
                as: Int.self)
            #expect(uniques == hours)

            // p95 per day within 1 % of the exact value at the same rank.
            let days = try await client.query(
                """
                SELECT r.value, (array_agg((e.properties->>'amount')::float8 ORDER BY (e.properties->>'amount')::float8))
                           [floor(0.95 * (count(*) - 1))::int + 1]
                FROM rollups r JOIN events e ON e.org_id = r.org_id
                    AND e."timestamp" >= r.bucket_start AND e."timestamp" < r.bucket_start + interval '1 day'
                WHERE r.metric_id = \(p95) AND r.granularity = 'day' AND r.group_value = ''
                GROUP BY r.bucket_start, r.value
                """, logger: logger
            ).collect()
            #expect(!days.isEmpty)
            for row in days {
                let (estimate, exact) = try row.decode((Double, Double).self)
                #expect(abs(estimate - exact) <= exact * 0.01 + 1e-9)
            }

            // Re-running folds nothing: the rollups are unchanged.
            let before = try await client.scalar("SELECT md5(string_agg(r::text, '|' ORDER BY r::text)) FROM rollups r", as: String.self)
            _ = try await RollupJob.runOnce(client: client, logger: logger)
            _ = try await RollupJob.runOnce(client: client, logger: logger)
            let after = try await client.scalar("SELECT md5(string_agg(r::text, '|' ORDER BY r::text)) FROM rollups r", as: String.self)
            #expect(before == after)
        }
    }

    /// A backlog (events stored while no worker ran) is folded a bounded number of
    /// transactions per run, each run committing its slice: none waits for the whole.
    @Test func backlogIsFoldedInBoundedRuns() async throws {
        try await withTestDatabase { client, _ in
            let org = try await OrganizationStore(client: client).create(name: "L", tier: .starter, logger: logger).orgID
            let metric = try await Self.createMetric(client, org: org, name: "views", event: "view", aggregation: "count")
            // 30 ingest transactions of 20 events each.
            for batch in 0..<30 {
                try await client.query(
                    """
                    INSERT INTO events (org_id, event_name, properties, "timestamp")
                    SELECT \(org), 'view', '{}', now() - (\(batch) * 20 + i) * interval '1 minute'
                    FROM generate_series(1, 20) i
                    """, logger: logger)
            }
            var runs = 0, folded: Int64 = 0
            while true {
                guard case .folded(let watermark, _, let matches) = try await RollupJob.runOnce(
                    client: client, logger: logger, maximumTransactions: 10)
                else { continue }
                runs += 1
                // A run reads at most 10 transactions (of 20 events, times the built-in
                // metrics every event also counts for).
                #expect(matches <= 10 * 20 * 3)
                folded += matches
                if try await !RollupJob.hasRows(atOrAbove: watermark, client: client, logger: logger) { break }
                // Transaction ids are the cluster's: tests running alongside spend some of
                // each run's ten, so only a generous bound on the number of runs.
                if runs >= 1000 { break }
            }
            #expect(runs >= 3 && runs < 1000)
            let counted = try await client.scalar(
                "SELECT sum(count)::int FROM rollups WHERE metric_id = \(metric) AND granularity = 'day' AND group_value = ''",
                as: Int.self)
            #expect(counted == 600)
        }
    }

    /// The running rollup's "anything left?" look, every 200 ms under load, stays on the
    /// transaction id index when the partition has no statistics yet (a new month, a burst
    /// before autovacuum): the `EXISTS` form it replaced was planned as a sequential scan.
    @Test func lookingForUnfoldedRowsUsesTheIndexWithoutStatistics() async throws {
        try await withTestDatabase { client, _ in
            let org = try await OrganizationStore(client: client).create(name: "S", tier: .starter, logger: logger).orgID
            try await client.query(
                """
                INSERT INTO events (org_id, event_name, properties, "timestamp")
                SELECT \(org), 'view', '{"path": "/a"}', now() - i * interval '1 second' FROM generate_series(1, 30000) i
                """, logger: logger)
            let watermark = try #require(try await client.scalar("SELECT max(ingest_xid) + 1 FROM events", as: Int64.self))
            let query = RollupJob.firstRowQuery(atOrAbove: watermark)
            let plan = try await client.query(
                PostgresQuery(unsafeSQL: "EXPLAIN (FORMAT JSON) " + query.sql, binds: query.binds), logger: logger
            ).collect().map { try $0.decode(String.self) }.joined()
            #expect(plan.contains("Index Only Scan"))
            #expect(!plan.contains("Seq Scan"), "\(plan)")
            #expect(try await !RollupJob.hasRows(atOrAbove: watermark, client: client, logger: logger))
            #expect(try await RollupJob.hasRows(atOrAbove: watermark - 1, client: client, logger: logger))
        }
    }

    /// Under a steady stream of commits the job looks at most every `lookInterval` (each
    /// look costs a dozen statements, found rows or not), and still folds every event.
    @Test func aSteadyStreamIsFoldedAtTheLookInterval() async throws {
        try await withTestDatabase { client, _ in
            let org = try await OrganizationStore(client: client).create(name: "T", tier: .starter, logger: logger).orgID
            let metric = try await Self.createMetric(client, org: org, name: "views", event: "view", aggregation: "count")
            // Every fresh run moves the watermark: log when each one's transaction began.
            try await client.query("CREATE TABLE look_log (at timestamptz NOT NULL)", logger: logger)
            try await client.query(
                """
                CREATE FUNCTION log_look() RETURNS trigger LANGUAGE plpgsql AS
                $$ BEGIN INSERT INTO look_log VALUES (now()); RETURN NEW; END $$
                """, logger: logger)
            try await client.query(
                "CREATE TRIGGER log_look AFTER UPDATE ON rollup_state FOR EACH ROW EXECUTE FUNCTION log_look()", logger: logger)
            let context = JobContext(
                id: 1, kind: RollupJob.kind, queue: "rollups", attempt: 1, maxAttempts: 1, enqueuedAt: Date(), logger: logger)
            let writingEnded = try await withThrowingTaskGroup(of: Date?.self) { group in
                group.addTask {
                    _ = try await RollupJob(client: client).run(.init(), context: context)
                    return nil
                }
                // A commit every 5 ms for 1.5 s.
                try await commitViews(client, org: org, for: .milliseconds(1500))
                let ended = Date()
                try await group.waitForAll()
                return ended
            }
            let looks = try await client.query(
                "SELECT at FROM look_log WHERE at < \(writingEnded) ORDER BY at", logger: logger
            ).collect().map { try $0.decode(Date.self) }
            #expect(looks.count >= 2 && looks.count <= 9, "\(looks.count) looks in 1.5 s")
            // 200 ms apart, give or take the wait for a connection.
            let gaps = zip(looks.dropFirst(), looks).map { $0.timeIntervalSince($1) }
            #expect(gaps.allSatisfy { $0 >= 0.15 }, "\(gaps)")
            let stored = try await client.scalar("SELECT count(*)::int8 FROM events WHERE org_id = \(org)", as: Int64.self)
            let counted = try await client.scalar(
                "SELECT sum(count)::int8 FROM rollups WHERE metric_id = \(metric) AND granularity = 'day' AND group_value = ''",
                as: Int64.self)
            #expect(stored != nil && counted == stored)
        }
    }

    /// Out of its budget while events still arrive, the job ingestion woke snoozes to run
    /// again at once: the wake-ups that came meanwhile found its unique key taken. Had it
    /// finished, rows committed after its last look would wait for the next wake-up or the
    /// cron safety net. A cron tick's job just finishes.
    @Test func aWokenJobOutOfBudgetHandsOverBySnoozing() async throws {
        try await withTestDatabase { client, _ in
            let org = try await OrganizationStore(client: client).create(name: "B", tier: .starter, logger: logger).orgID
            func outcome(key: String) async throws -> JobOutcome? {
                let context = JobContext(
                    id: 1, kind: RollupJob.kind, queue: "rollups", attempt: 1, maxAttempts: 1, enqueuedAt: Date(),
                    logger: logger, uniqueKey: key)
                return try await withThrowingTaskGroup(of: JobOutcome?.self) { group in
                    group.addTask { try await RollupJob(client: client, budget: .milliseconds(600)).run(.init(), context: context) }
                    // A commit every 5 ms for 1.2 s: never caught up within the budget.
                    try await commitViews(client, org: org, for: .milliseconds(1200))
                    group.addTask { nil }
                    var outcome: JobOutcome?
                    for try await result in group { if let result { outcome = result } }
                    return outcome
                }
            }
            #expect(try await outcome(key: Rollups.jobUniqueKey) == .snooze(.zero))
            #expect(try await outcome(key: "cron:1:1764000000") == .success)
        }
    }

    /// The cron safety net's job leaves the folding to the job ingestion woke (the one
    /// holding the rollup's unique key) while that one runs: beside it, it would only take
    /// turns at the lock. Alone, it folds.
    @Test func theSafetyNetLeavesTheFoldingToTheWokenJob() async throws {
        try await withTestDatabase { client, _ in
            let org = try await OrganizationStore(client: client).create(name: "W", tier: .starter, logger: logger).orgID
            func runningJob(key: String) async throws -> JobContext {
                let id = try await client.scalar(
                    """
                    INSERT INTO jobs (kind, queue, state, unique_key, attempt, attempted_at, lease_expires_at)
                    VALUES (\(RollupJob.kind), 'rollups', 'running', \(key), 1, now(), now() + interval '1 minute') RETURNING id
                    """, as: Int64.self)!
                return JobContext(
                    id: id, kind: RollupJob.kind, queue: "rollups", attempt: 1, maxAttempts: 1, enqueuedAt: Date(), logger: logger,
                    uniqueKey: key)
            }
            let woken = try await runningJob(key: Rollups.jobUniqueKey)
            let tick = try await runningJob(key: "cron:1:1764000000")
            let clock = ContinuousClock()
            let (tickTook, writing) = try await withThrowingTaskGroup(of: Duration?.self) { group in
                group.addTask {
                    _ = try await RollupJob(client: client).run(.init(), context: woken)
                    return nil
                }
                group.addTask {
                    try await Task.sleep(for: .milliseconds(400))
                    let started = clock.now
                    _ = try await RollupJob(client: client).run(.init(), context: tick)
                    return clock.now - started
                }
                // A commit every 5 ms for 1.5 s: the woken job keeps looping meanwhile.
                let started = clock.now
                try await commitViews(client, org: org, for: .milliseconds(1500))
                let writing = clock.now - started
                var tickTook: Duration?
                for try await result in group { if let result { tickTook = result } }
                return (tickTook, writing)
            }
            // It stopped at once, while events were still arriving (looping, it would have
            // run until they stopped and 300 ms after).
            let took = try #require(tickTook)
            #expect(took < writing - .milliseconds(400), "\(took) of \(writing)")
            let counted = try await client.scalar(
                """
                SELECT sum(r.count)::int8 FROM rollups r JOIN metrics m ON m.id = r.metric_id
                WHERE m.org_id = \(org) AND m.builtin = 'events_by_name' AND r.granularity = 'day' AND r.group_value = ''
                """, as: Int64.self)
            #expect(counted == (try await client.scalar("SELECT count(*)::int8 FROM events WHERE org_id = \(org)", as: Int64.self)))

            // With no woken job running, the safety net's job folds what it finds.
            try await client.query("UPDATE jobs SET state = 'completed', finished_at = now() WHERE id = \(woken.id)", logger: logger)
            try await client.query(
                "INSERT INTO events (org_id, event_name, properties, \"timestamp\") VALUES (\(org), 'late', '{}', now())", logger: logger)
            _ = try await RollupJob(client: client).run(.init(), context: tick)
            #expect(try await RollupJob.hasRows(
                atOrAbove: try await client.scalar("SELECT watermark FROM rollup_state", as: Int64.self)!, client: client,
                logger: logger) == false)
        }
    }

    /// A metric defined after its events exist is backfilled in slices while fresh events
    /// keep arriving and rolling up; the two never count an event twice.
    @Test func backfillAndFreshRollupsPartitionTheEvents() async throws {
        try await withTestDatabase { client, _ in
            let org = try await OrganizationStore(client: client).create(name: "B", tier: .starter, logger: logger).orgID
            let start = Date().addingTimeInterval(-10 * 86400)
            try await client.query(
                """
                INSERT INTO events (org_id, event_name, properties, user_id, "timestamp")
                SELECT \(org), 'view', jsonb_build_object('ms', i % 500), 'u' || (i % 40),
                       \(start) + (i * interval '97 seconds')
                FROM generate_series(1, 5000) i
                """, logger: logger)
            // Other names in between: the backfill finds its own through the name key.
            try await client.query(
                """
                INSERT INTO events (org_id, event_name, properties, "timestamp")
                SELECT \(org), 'click', jsonb_build_object('ms', 7), \(start) + (i * interval '61 seconds')
                FROM generate_series(1, 3000) i
                """, logger: logger)
            // Events sharing one timestamp straddle a slice boundary.
            try await client.query(
                """
                INSERT INTO events (org_id, event_name, properties, "timestamp")
                SELECT \(org), 'view', '{"ms": 1}', \(start) + interval '1 hour' FROM generate_series(1, 300)
                """, logger: logger)
            try await Self.drain(client, logger: logger)
            let metric = try await Self.createMetric(
                client, org: org, name: "Views", event: "view", aggregation: "sum", property: "ms", backfillDone: false)
            let backfill = Task {
                try await BackfillJob.runToCompletion(
                    .init(orgID: org, metricID: metric, version: 1), client: client, sliceEvents: 700, logger: logger)
            }
            for round in 0..<20 {
                try await client.query(
                    """
                    INSERT INTO events (org_id, event_name, properties, "timestamp")
                    SELECT \(org), 'view', jsonb_build_object('ms', \(round)), \(start) + (i * interval '1 hour')
                    FROM generate_series(1, 30) i
                    """, logger: logger)
                _ = try await RollupJob.runOnce(client: client, logger: logger)
            }
            try await backfill.value
            try await Self.drain(client, logger: logger)
            #expect(try await client.scalar("SELECT backfill_done FROM metrics WHERE id = \(metric)", as: Bool.self) == true)
            Self.compare(
                try await Self.rollups(client, metric: metric),
                try await Self.expected(client, org: org, event: "view", valueSQL: "(properties->>'ms')::float8"))
            // The built-in per-event-name count saw every event too.
            let builtin = try await client.scalar(
                "SELECT id FROM metrics WHERE org_id = \(org) AND builtin = 'events_by_name'", as: UUID.self)!
            let total = try await client.scalar(
                """
                SELECT sum(count)::int FROM rollups WHERE metric_id = \(builtin) AND granularity = 'day' AND group_value = '=view'
                """, as: Int.self)
            #expect(total == 5000 + 300 + 600)
        }
    }

    /// Counts and distinct users by name are folded from events counted per minute
    /// (migration 0015) in fresh runs, and per event in backfills: the stored rows agree
    /// byte for byte, sketches included, for every shape of such a metric — over all events
    /// or one name, grouped by name or not — with a minute past the exact set's 1,024
    /// users, events without a user, and an event named "*".
    @Test func minuteCountsAndPerEventFoldsAgree() async throws {
        try await withTestDatabase { client, _ in
            let org = try await OrganizationStore(client: client).create(name: "M", tier: .starter, logger: logger).orgID
            let shapes: [(event: String, aggregation: String, groupBy: String?)] = [
                ("*", "count", "$event_name"), ("*", "unique_users", nil), ("*", "count", nil),
                ("view", "count", nil), ("view", "unique_users", "$event_name"), ("*", "unique_users", "$event_name"),
            ]
            var fresh: [UUID] = []
            for (index, shape) in shapes.enumerated() {
                fresh.append(try await Self.createMetric(
                    client, org: org, name: "fresh \(index)", event: shape.event, aggregation: shape.aggregation,
                    groupBy: shape.groupBy))
            }
            // On a whole minute: the rounds' events (17 s apart) share their minutes.
            let start = Date(timeIntervalSince1970: ((Date().timeIntervalSince1970 - 2 * 86400) / 60).rounded(.down) * 60)
            for round in 0..<4 {
                try await client.query(
                    """
                    INSERT INTO events (org_id, event_name, properties, user_id, "timestamp")
                    SELECT \(org), CASE WHEN i % 7 = 0 THEN 'click' WHEN i % 101 = 0 THEN '*' ELSE 'view' END, '{}',
                           CASE WHEN i % 5 = 0 THEN NULL ELSE 'u' || (i + \(round) * 3000) END,
                           \(start) + ((i % 3) * interval '1 day' / 3) + (\(round) * interval '17 seconds') + (i % 2) * interval '1 hour'
                    FROM generate_series(1, 3000) i
                    """, logger: logger)
                try await Self.drain(client, logger: logger)
            }
            // Every fresh metric was folded from minute counts: its horizon precedes the events.
            let firstEvent = try await client.scalar("SELECT min(ingest_xid) FROM events WHERE org_id = \(org)", as: Int64.self)!
            let counted = try await client.scalar(
                "SELECT count(DISTINCT metric_id)::int FROM rollup_minute_deltas(\(firstEvent), \(firstEvent + 1)) WHERE org_id = \(org)",
                as: Int.self)
            #expect(counted == shapes.count + 2)  // the two built-ins as well

            // The same definitions, written after the events: backfilled from raw events, per event.
            var backfilled: [UUID] = []
            for (index, shape) in shapes.enumerated() {
                let metric = try await Self.createMetric(
                    client, org: org, name: "backfilled \(index)", event: shape.event, aggregation: shape.aggregation,
                    groupBy: shape.groupBy, backfillDone: false)
                try await BackfillJob.runToCompletion(
                    .init(orgID: org, metricID: metric, version: 1), client: client, sliceEvents: 2_500, logger: logger)
                backfilled.append(metric)
            }
            func stored(_ metric: UUID) async throws -> [String] {
                try await client.query(
                    """
                    SELECT concat_ws('|', granularity, bucket_start, group_value, count, sum, min, max, value, encode(sketch, 'hex'))
                    FROM rollups WHERE metric_id = \(metric) ORDER BY 1
                    """, logger: logger
                ).collect().map { try $0.decode(String.self) }
            }
            for (index, shape) in shapes.enumerated() {
                let freshRows = try await stored(fresh[index])
                #expect(!freshRows.isEmpty)
                #expect(freshRows == (try await stored(backfilled[index])), "\(shape)")
            }
            // One minute holds more than 1,024 users: its sketch is the dense one.
            let dense = try await client.scalar(
                "SELECT count(*)::int FROM rollups WHERE metric_id = \(fresh[1]) AND granularity = 'minute' AND value > 1024",
                as: Int.self)
            #expect((dense ?? 0) > 0)
        }
    }

    /// Filters (eq, in, exists) select events the same way SQL over raw events does;
    /// numbers too large for float8 and non-numeric values are skipped, not fatal.
    @Test func filtersMatchLikeSQL() async throws {
        try await withTestDatabase { client, _ in
            let org = try await OrganizationStore(client: client).create(name: "F", tier: .starter, logger: logger).orgID
            let eq = try await Self.createMetric(
                client, org: org, name: "Pro", event: "e", aggregation: "count",
                filters: #"[{"property": "plan", "op": "eq", "value": "pro"}]"#)
            let inList = try await Self.createMetric(
                client, org: org, name: "Small", event: "e", aggregation: "count",
                filters: #"[{"property": "seats", "op": "in", "value": [1, 2]}]"#)
            let exists = try await Self.createMetric(
                client, org: org, name: "Has coupon", event: "e", aggregation: "sum", property: "seats",
                filters: #"[{"property": "coupon", "op": "exists"}, {"property": "plan", "op": "in", "value": ["pro", "team"]}]"#)
            try await client.query(
                """
                INSERT INTO events (org_id, event_name, properties, "timestamp") VALUES
                    (\(org), 'e', '{"plan": "pro", "seats": 1, "coupon": "X"}', now()),
                    (\(org), 'e', '{"plan": "pro", "seats": 2.0}', now()),
                    (\(org), 'e', '{"plan": "team", "seats": 3, "coupon": null}', now()),
                    (\(org), 'e', '{"plan": "free", "seats": "2", "coupon": "Y"}', now()),
                    (\(org), 'e', '{"plan": ["pro"], "seats": 1e400, "coupon": "Z"}', now()),
                    (\(org), 'other', '{"plan": "pro", "seats": 1}', now())
                """, logger: logger)
            try await Self.drain(client, logger: logger)
            func total(_ metric: UUID) async throws -> (Int64, Double)? {
                try await client.query(
                    "SELECT sum(count)::int8, sum(sum) FROM rollups WHERE metric_id = \(metric) AND granularity = 'day' AND group_value = ''",
                    logger: logger
                ).collect().first?.decode((Int64, Double).self)
            }
            #expect(try await total(eq)?.0 == 2)  // not the ["pro"] array, not the other event
            #expect(try await total(inList)?.0 == 2)  // 1 and 2.0; the string "2" is not the number 2
            // coupon present (null counts as present) and plan pro/team: seats 1 and 3.
            #expect(try await total(exists)?.0 == 2)
            #expect(try await total(exists)?.1 == 4)
        }
    }

    /// The reader answers any range from rollups: totals merge states, day buckets follow
    /// the time zone, groups rank with the rest as "other".
    @Test func readerAnswersRangesZonesAndGroups() async throws {
        try await withTestDatabase { client, _ in
            let org = try await OrganizationStore(client: client).create(name: "Q", tier: .starter, logger: logger).orgID
            let metric = try await Self.createMetric(
                client, org: org, name: "Buyers", event: "buy", aggregation: "unique_users", groupBy: "country")
            let formatter = ISO8601DateFormatter()
            let t0 = formatter.date(from: "2026-11-10T00:00:00Z")!
            // 96 hours; user ids repeat across hours (a sum of hourly uniques would overcount).
            try await client.query(
                """
                INSERT INTO events (org_id, event_name, properties, user_id, "timestamp")
                SELECT \(org), 'buy', jsonb_build_object('country', (ARRAY['de','fr','us','jp'])[1 + i % 4]),
                       'user' || (i % 60), \(t0) + (i * interval '7 minutes')
                FROM generate_series(0, 822) i
                """, logger: logger)
            try await Self.drain(client, logger: logger)
            let reader = RollupReader(client: client)
            let definition = try await reader.metric(orgID: org, id: metric, logger: logger)!
            let start = formatter.date(from: "2026-11-10T05:30:00Z")!, end = formatter.date(from: "2026-11-13T17:10:00Z")!
            let series = try await reader.series(
                metric: definition, start: start, end: end, granularity: .day,
                timeZone: TimeZone(identifier: "America/New_York")!, topGroups: 2, logger: logger)
            // Day buckets start at New York midnight (05:00Z in November).
            #expect(formatter.string(from: series.points[0].t) == "2026-11-10T05:00:00Z")
            let expectedTotal = try await client.scalar(
                """
                SELECT count(DISTINCT user_id)::float8 FROM events
                WHERE org_id = \(org) AND "timestamp" >= \(series.start) AND "timestamp" < \(series.end)
                """, as: Double.self)
            #expect(series.total == expectedTotal)
            for point in series.points {
                let exact = try await client.scalar(
                    """
                    SELECT count(DISTINCT user_id)::float8 FROM events WHERE org_id = \(org)
                      AND "timestamp" >= \(point.t) AND "timestamp" < \(point.t) + interval '1 day'
                    """, as: Double.self)
                #expect(point.value == exact)
            }
            #expect(series.groups.map(\.name).count == 3)
            #expect(series.groups.last?.name == "other")
            #expect(series.groups.first?.total == 15)

            // Purchases by country, hourly (points read straight from stored buckets): the
            // top group plus "other" add up to the total, point by point.
            let sums = try await Self.createMetric(
                client, org: org, name: "Buys by country", event: "buy", aggregation: "count", groupBy: "country")
            try await client.query(
                """
                INSERT INTO events (org_id, event_name, properties, user_id, "timestamp")
                SELECT \(org), 'buy', jsonb_build_object('country', (ARRAY['de','fr','us','de'])[1 + i % 4]),
                       'user' || i, \(t0) + (i * interval '13 minutes')
                FROM generate_series(0, 99) i
                """, logger: logger)
            try await Self.drain(client, logger: logger)
            let hourly = try await reader.series(
                metric: try await reader.metric(orgID: org, id: sums, logger: logger)!, start: t0,
                end: t0.addingTimeInterval(86400), granularity: .hour, timeZone: TimeZone(identifier: "UTC")!,
                topGroups: 1, logger: logger)
            #expect(hourly.total == 100)
            #expect(hourly.groups.map(\.name) == ["de", "other"])
            #expect(hourly.groups.map(\.total) == [50, 50])
            for index in hourly.points.indices {
                let parts = hourly.groups.map { $0.points[index].value ?? 0 }
                #expect(parts.reduce(0, +) == hourly.points[index].value)
            }

            // Another organization's metric id is not found.
            let other = try await OrganizationStore(client: client).create(name: "X", tier: .starter, logger: logger).orgID
            #expect(try await reader.metric(orgID: other, id: metric, logger: logger) == nil)
        }
    }
}

struct RolledBack: Error {}

/// A flag set once, read from other tasks.
final class ManagedAtomicFlag: @unchecked Sendable {
    private let lock = NSLock()
    private var value = false
    var isSet: Bool { lock.withLock { value } }
    func set() { lock.withLock { value = true } }
}
