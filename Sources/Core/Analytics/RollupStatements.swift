import Foundation
import NIOCore
import PostgresNIO

/// The reader's two hot queries as prepared statements: planning them (partition
/// pruning over a range of OR-ed bounds) took longer than running them, for every
/// widget of every dashboard request. Prepared once per connection, they plan once.
enum RollupStatements {
    /// One row per metric and group: its bucket starts (epoch µs), values and states
    /// (count, sum, min, max; NaN for none), in time order. One sort feeds every array
    /// (an ORDER BY per array_agg sorted the rows six times), and one statement serves
    /// every widget of a dashboard that shares a range.
    struct Series: PostgresPreparedStatement {
        typealias Row = (UUID, String, [Int64], [Double], [Int64], [Double], [Double], [Double])
        static let sql = """
            SELECT metric_id, group_value, array_agg(epoch_us(bucket_start)), array_agg(coalesce(value, 'NaN')),
                   array_agg(count), array_agg(sum), array_agg(coalesce(min, 'NaN')), array_agg(coalesce(max, 'NaN'))
            FROM (SELECT metric_id, group_value, bucket_start, value, count, sum, min, max FROM rollups
                  WHERE org_id = $1 AND metric_id = ANY($2) AND granularity = $3 AND bucket_start >= $4 AND bucket_start < $5
                  ORDER BY metric_id, group_value, bucket_start) r
            GROUP BY metric_id, group_value
            """

        let orgID: UUID
        let metricIDs: [UUID]
        let granularity: String
        let start: Date
        let end: Date

        func makeBindings() throws -> PostgresBindings {
            var bindings = PostgresBindings(capacity: 5)
            bindings.append(orgID)
            bindings.append(metricIDs)
            bindings.append(granularity)
            bindings.append(start)
            bindings.append(end)
            return bindings
        }

        func decodeRow(_ row: PostgresRow) throws -> Row {
            try row.decode(Row.self)
        }
    }

    /// Full states of the buckets tiling a span: days, then hours and minutes at the
    /// edges (`RollupReader.cover`), for sketch metrics.
    struct Cover: PostgresPreparedStatement {
        typealias Row = (UUID, String, Int64, Double, Double?, Double?, ByteBuffer?)
        static let sql = """
            SELECT metric_id, group_value, count, sum, min, max, sketch
            FROM rollups
            WHERE org_id = $1 AND metric_id = ANY($2)
              AND ((granularity = 'day' AND bucket_start >= $3 AND bucket_start < $4)
                OR (granularity = 'hour' AND ((bucket_start >= $5 AND bucket_start < $6) OR (bucket_start >= $7 AND bucket_start < $8)))
                OR (granularity = 'minute' AND ((bucket_start >= $9 AND bucket_start < $10) OR (bucket_start >= $11 AND bucket_start < $12))))
            """

        let orgID: UUID
        let metricIDs: [UUID]
        let bounds: [Date]  // 10: days, hours ×2, minutes ×2

        func makeBindings() throws -> PostgresBindings {
            var bindings = PostgresBindings(capacity: 12)
            bindings.append(orgID)
            bindings.append(metricIDs)
            for bound in bounds { bindings.append(bound) }
            return bindings
        }

        func decodeRow(_ row: PostgresRow) throws -> Row {
            try row.decode(Row.self)
        }
    }
}
