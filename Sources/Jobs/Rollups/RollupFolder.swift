import Core
import Foundation
import Logging
import NIOCore
import PostgresNIO

/// Folds minute deltas into the stored minute, hour and day buckets, on the caller's
/// connection inside its transaction (which holds the rollup advisory lock, so the
/// read-merge-write of a bucket cannot interleave with another writer's).
struct RollupFolder {
    struct Key: Hashable {
        let orgID: UUID
        let metricID: UUID
        let granularity: Granularity
        let bucket: Date
        let group: String
    }

    /// One row of the delta query: a minute of one metric (and group) in the events read.
    struct Delta {
        let orgID: UUID
        let metricID: UUID
        let aggregation: Aggregation
        let minute: Date
        let group: String?
        let state: RollupState
    }

    /// What a fold touched, for the notification.
    struct Touched {
        var metricsByOrg: [UUID: Set<UUID>] = [:]
        var rows = 0
        /// (event, metric) pairs folded.
        var matches: Int64 = 0
    }

    /// The delta query's columns, in order. Both callers select these from `rollup_matches`
    /// rows fenced in a subquery (`OFFSET 0`): without the fence the planner inlines the
    /// view and evaluates the value expression once per aggregate that uses it (measured:
    /// twice the run time). Hashes are not made DISTINCT here: that forces a sort per group,
    /// and the sketch ignores repeats anyway.
    static let deltaColumns = """
        org_id, metric_id, aggregation, minute, group_value, count(*)::int8, sum(v), min(v), max(v),
        array_agg(h) FILTER (WHERE h IS NOT NULL),
        array_agg(v) FILTER (WHERE v IS NOT NULL AND aggregation IN ('p50', 'p90', 'p95', 'p99'))
        """
    static let fencedColumns = "org_id, metric_id, aggregation, minute, group_value, v, h"
    /// Rows of numeric aggregations without a number do not count.
    static let deltaGrouping = """
        WHERE v IS NOT NULL OR aggregation IN ('count', 'unique_users')
        GROUP BY org_id, metric_id, aggregation, minute, group_value
        """

    static func decodeDeltas(_ rows: PostgresRowSequence) async throws -> [Delta] {
        var deltas: [Delta] = []
        for try await row in rows {
            let (org, metric, aggregationName, minute, group, count, sum, min, max, hashes, values) = try row.decode(
                (UUID, UUID, String, Date, String?, Int64, Double?, Double?, Double?,
                 PostgresNumberArray<Int64>?, PostgresNumberArray<Double>?).self)
            guard let aggregation = Aggregation(rawValue: aggregationName) else { continue }
            var state = RollupState()
            state.count = count
            state.sum = sum ?? 0
            state.min = min
            state.max = max
            if aggregation == .uniqueUsers {
                var users = HyperLogLog()
                users.insert(hashes: (hashes?.elements ?? []).lazy.map { UInt64(bitPattern: $0) })
                state.users = users
            }
            if aggregation.quantile != nil {
                var sketch = DDSketch()
                for value in values?.elements ?? [] { sketch.insert(value) }
                state.quantiles = sketch
            }
            // A numeric aggregation counts values, not events (rows without one are filtered).
            deltas.append(Delta(orgID: org, metricID: metric, aggregation: aggregation, minute: minute, group: group, state: state))
        }
        return deltas
    }

    /// Merges the deltas into the stored rows and writes them back.
    static func fold(_ deltas: [Delta], on connection: PostgresConnection, logger: Logger) async throws -> Touched {
        var touched = Touched()
        guard !deltas.isEmpty else { return touched }
        var pending: [Key: RollupState] = [:]
        var aggregations: [UUID: Aggregation] = [:]
        for delta in deltas {
            aggregations[delta.metricID] = delta.aggregation
            touched.metricsByOrg[delta.orgID, default: []].insert(delta.metricID)
            var groups = [""]
            if let group = delta.group { groups.append("=" + group) }
            for granularity in Granularity.allCases {
                let bucket = granularity.bucket(of: delta.minute)
                for group in groups {
                    let key = Key(orgID: delta.orgID, metricID: delta.metricID, granularity: granularity, bucket: bucket, group: group)
                    pending[key, default: RollupState()].merge(delta.state)
                }
            }
        }
        touched.matches = deltas.reduce(0) { $0 + $1.state.count }

        let keys = Array(pending.keys)
        let orgs = keys.map(\.orgID)
        let metrics = keys.map(\.metricID)
        let granularities = keys.map(\.granularity.rawValue)
        let buckets = keys.map(\.bucket)
        let groups = keys.map(\.group)

        // Existing rows for these keys.
        let existing = try await connection.query(
            """
            SELECT r.org_id, r.metric_id, r.granularity, r.bucket_start, r.group_value, r.count, r.sum, r.min, r.max, r.sketch
            FROM unnest(\(orgs)::uuid[], \(metrics)::uuid[], \(granularities)::text[], \(buckets)::timestamptz[], \(groups)::text[])
                 AS k(org_id, metric_id, granularity, bucket_start, group_value)
            JOIN rollups r USING (org_id, metric_id, granularity, bucket_start, group_value)
            """, logger: logger)
        for try await row in existing {
            let (org, metric, granularityName, bucket, group, count, sum, min, max, sketch) = try row.decode(
                (UUID, UUID, String, Date, String, Int64, Double, Double?, Double?, ByteBuffer?).self)
            guard let granularity = Granularity(rawValue: granularityName), let aggregation = aggregations[metric] else { continue }
            let key = Key(orgID: org, metricID: metric, granularity: granularity, bucket: bucket, group: group)
            let stored = RollupState(
                count: count, sum: sum, min: min, max: max, sketch: sketch.map { Array($0.readableBytesView) },
                aggregation: aggregation)
            pending[key]?.merge(stored)
        }

        var counts: [Int64] = []
        var sums: [Double] = []
        var mins: [Double] = []
        var maxes: [Double] = []
        var values: [Double] = []
        var sketches: [String] = []
        for key in keys {
            let state = pending[key]!
            let aggregation = aggregations[key.metricID]!
            counts.append(state.count)
            sums.append(state.sum)
            // Arrays cannot carry NULL from the client: NaN stands for "none".
            mins.append(state.min ?? .nan)
            maxes.append(state.max ?? .nan)
            values.append(state.value(for: aggregation) ?? .nan)
            sketches.append(state.sketchBytes.map(Hex.encode) ?? "")
        }
        try await connection.query(
            """
            INSERT INTO rollups (org_id, metric_id, granularity, bucket_start, group_value, count, sum, min, max, value, sketch, updated_at)
            SELECT k.org_id, k.metric_id, k.granularity, k.bucket_start, k.group_value, k.count, k.sum,
                   nullif(k.min, 'NaN'), nullif(k.max, 'NaN'), nullif(k.value, 'NaN'),
                   CASE WHEN k.sketch = '' THEN NULL ELSE decode(k.sketch, 'hex') END, now()
            FROM unnest(\(orgs)::uuid[], \(metrics)::uuid[], \(granularities)::text[], \(buckets)::timestamptz[],
                        \(groups)::text[], \(counts)::int8[], \(sums)::float8[], \(mins)::float8[], \(maxes)::float8[],
                        \(values)::float8[], \(sketches)::text[])
                 AS k(org_id, metric_id, granularity, bucket_start, group_value, count, sum, min, max, value, sketch)
            ON CONFLICT (org_id, metric_id, granularity, bucket_start, group_value) DO UPDATE SET
                count = excluded.count, sum = excluded.sum, min = excluded.min, max = excluded.max,
                value = excluded.value, sketch = excluded.sketch, updated_at = excluded.updated_at
            """, logger: logger)
        touched.rows = keys.count
        return touched
    }

    /// Tells every API node which organizations' metrics changed; delivered at commit.
    static func notify(_ touched: Touched, on connection: PostgresConnection, logger: Logger) async throws {
        for (org, metrics) in touched.metricsByOrg {
            // NOTIFY payloads are limited to 8,000 bytes: past 100 metrics, name none (= all).
            let ids = metrics.count <= 100 ? metrics.map { "\"\($0.uuidString.lowercased())\"" }.joined(separator: ",") : ""
            let payload = #"{"org":"\#(org.uuidString.lowercased())","metrics":[\#(ids)]}"#
            try await connection.query("SELECT pg_notify(\(Rollups.notifyChannel), \(payload))", logger: logger)
        }
    }
}
