import Foundation
import NIOCore
import PostgresNIO

/// The reader's two hot queries as prepared statements: planning them (partition
/// pruning over a range of OR-ed bounds) took longer than running them, for every
/// widget of every dashboard request. Prepared once per connection, they plan once.
enum RollupStatements {
    /// One row per group: its bucket starts (epoch µs), values and states (count, sum, min,
    /// max; NaN for none), in time order: one sort feeds every array (an ORDER BY per
    /// array_agg sorted the rows six times).
    struct Series: PostgresPreparedStatement {
        typealias Row = (String, [Int64], [Double], [Int64], [Double], [Double], [Double])
        static let sql = """
            SELECT group_value, array_agg(epoch_us(bucket_start)), array_agg(coalesce(value, 'NaN')), array_agg(count),
                   array_agg(sum), array_agg(coalesce(min, 'NaN')), array_agg(coalesce(max, 'NaN'))
            FROM (SELECT group_value, bucket_start, value, count, sum, min, max FROM rollups
                  WHERE org_id = $1 AND metric_id = $2 AND granularity = $3 AND bucket_start >= $4 AND bucket_start < $5
                    AND (group_value = '' OR $6)
                  ORDER BY group_value, bucket_start) r
            GROUP BY group_value
            """

        let orgID: UUID
        let metricID: UUID
        let granularity: String
        let start: Date
        let end: Date
        let grouped: Bool

        func makeBindings() throws -> PostgresBindings {
            var bindings = PostgresBindings(capacity: 6)
            bindings.append(orgID)
            bindings.append(metricID)
            bindings.append(granularity)
            bindings.append(start)
            bindings.append(end)
            bindings.append(grouped)
            return bindings
        }

        func decodeRow(_ row: PostgresRow) throws -> Row {
            try row.decode(Row.self)
        }
    }

    /// Full states of the buckets tiling a span: days, then hours and minutes at the
    /// edges (`RollupReader.cover`). The sketch is read only when asked for.
    struct Cover: PostgresPreparedStatement {
        typealias Row = (String, Date, String, Int64, Double, Double?, Double?, Double?, ByteBuffer?)
        static let sql = """
            SELECT granularity, bucket_start, group_value, count, sum, min, max, value, CASE WHEN $3 THEN sketch END
            FROM rollups
            WHERE org_id = $1 AND metric_id = $2 AND (group_value = '' OR $4)
              AND ((granularity = 'day' AND bucket_start >= $5 AND bucket_start < $6)
                OR (granularity = 'hour' AND ((bucket_start >= $7 AND bucket_start < $8) OR (bucket_start >= $9 AND bucket_start < $10)))
                OR (granularity = 'minute' AND ((bucket_start >= $11 AND bucket_start < $12) OR (bucket_start >= $13 AND bucket_start < $14))))
            """

        let orgID: UUID
        let metricID: UUID
        let sketch: Bool
        let grouped: Bool
        let bounds: [Date]  // 10: days, hours ×2, minutes ×2

        func makeBindings() throws -> PostgresBindings {
            var bindings = PostgresBindings(capacity: 14)
            bindings.append(orgID)
            bindings.append(metricID)
            bindings.append(sketch)
            bindings.append(grouped)
            for bound in bounds { bindings.append(bound) }
            return bindings
        }

        func decodeRow(_ row: PostgresRow) throws -> Row {
            try row.decode(Row.self)
        }
    }
}
