import Foundation
import Logging
import NIOCore
import PostgresNIO

/// A metric's series and total over a range, read from rollups only — never raw events.
public struct MetricSeries: Sendable {
    public struct Point: Sendable, Equatable {
        public let t: Date
        public let value: Double?
    }

    public struct Group: Sendable {
        public let name: String
        public let total: Double?
        public let points: [Point]
    }

    public let metric: MetricDefinition
    public let granularity: Granularity
    public let timeZone: TimeZone
    /// The bucket-aligned span the points cover: [start, end).
    public let start: Date
    public let end: Date
    /// The aggregate over the whole span: a merged state, not a sum of point values.
    public let total: Double?
    public let points: [Point]
    /// Top groups by total, then "other" (the rest merged); empty without a group-by.
    public let groups: [Group]
}

/// Reads metric definitions and their rollups.
public struct RollupReader: Sendable {
    public static let maximumPoints = 10_000
    public static let otherGroup = "other"

    let client: PostgresClient

    public init(client: PostgresClient) {
        self.client = client
    }

    /// The organization's metric, or nil (another tenant's id is simply not found).
    public func metric(orgID: UUID, id: UUID, logger: Logger) async throws -> MetricDefinition? {
        try await Self.metric(orgID: orgID, id: id, on: client, logger: logger)
    }

    static func metric(orgID: UUID, id: UUID, on client: PostgresClient, logger: Logger) async throws -> MetricDefinition? {
        try await metrics(orgID: orgID, ids: [id], on: client, logger: logger)[id]
    }

    /// The organization's metrics among `ids`, by id.
    public func metrics(orgID: UUID, ids: [UUID], logger: Logger) async throws -> [UUID: MetricDefinition] {
        try await Self.metrics(orgID: orgID, ids: ids, on: client, logger: logger)
    }

    static func metrics(orgID: UUID, ids: [UUID], on client: PostgresClient, logger: Logger) async throws -> [UUID: MetricDefinition] {
        var result: [UUID: MetricDefinition] = [:]
        let rows = try await client.query(
            """
            SELECT id, name, event_name, aggregation, property, group_by FROM metrics
            WHERE org_id = \(orgID) AND id = ANY(\(ids)::uuid[])
            """, logger: logger)
        for try await row in rows {
            let (id, name, eventName, aggregation, property, groupBy) = try row.decode(
                (UUID, String, String, String, String?, String?).self)
            result[id] = MetricDefinition(
                id: id, orgID: orgID, name: name, eventName: eventName,
                aggregation: Aggregation(rawValue: aggregation) ?? .count, property: property, groupBy: groupBy)
        }
        return result
    }

    /// Bucket starts of the series plus the end of the last bucket.
    /// - Throws: `AppError(.invalidField)` for an empty range or too many points.
    public static func boundaries(start: Date, end: Date, granularity: Granularity, timeZone: TimeZone) throws -> [Date] {
        guard start < end else { throw AppError(.invalidField, "'start' must be before 'end'") }
        let estimate = end.timeIntervalSince(start) / Double(granularity.seconds)
        guard estimate <= Double(maximumPoints) else {
            throw AppError(
                .invalidField,
                "the range holds more than \(maximumPoints) \(granularity.rawValue) buckets: choose a coarser granularity")
        }
        var result: [Date] = []
        if granularity == .day {
            // Local midnights; in UTC they are the stored day buckets.
            var calendar = Calendar(identifier: .gregorian)
            calendar.timeZone = timeZone
            var day = calendar.startOfDay(for: start)
            while day < end {
                result.append(day)
                guard let next = calendar.date(byAdding: .day, value: 1, to: day) else { break }
                day = next
            }
            result.append(day)
        } else {
            var bucket = granularity.bucket(of: start)
            let step = TimeInterval(granularity.seconds)
            while bucket < end {
                result.append(bucket)
                bucket = bucket.addingTimeInterval(step)
            }
            result.append(bucket)
        }
        return result
    }

    /// The finest stored granularity whose buckets tile every boundary.
    static func readGranularity(for boundaries: [Date], requested: Granularity) -> Granularity {
        for candidate in Granularity.allCases.reversed() where candidate <= requested {
            if boundaries.allSatisfy({ candidate.bucket(of: $0) == $0 }) { return candidate }
        }
        return .minute
    }

    struct Row {
        let granularity: Granularity
        let bucket: Date
        let group: String
        let state: RollupState
        let value: Double?
    }

    /// Rows read for several metrics at once (`seriesBatch`).
    struct Prefetched {
        var rows: [UUID: [Row]] = [:]
        var totals: [UUID: [String: RollupState]] = [:]
    }

    /// Several metrics over one range: two statements for all of them (a dashboard's
    /// widgets mostly share a range), then each series as `series` would compute it.
    public func seriesBatch(
        metrics: [MetricDefinition], start: Date, end: Date, granularity: Granularity, timeZone: TimeZone,
        topGroups: Int = 10, logger: Logger
    ) async throws -> [UUID: MetricSeries] {
        guard !metrics.isEmpty else { return [:] }
        let bounds = try Self.boundaries(start: start, end: end, granularity: granularity, timeZone: timeZone)
        let read = Self.readGranularity(for: bounds, requested: granularity)
        var prefetched = Prefetched()
        if read == granularity {
            prefetched.rows = try await directRows(
                orgID: metrics[0].orgID, metricIDs: metrics.map(\.id), read: read, start: bounds.first!, end: bounds.last!,
                logger: logger)
        }
        let sketchMetrics = metrics.filter(\.aggregation.needsSketch)
        if !sketchMetrics.isEmpty {
            prefetched.totals = try await coverTotals(
                orgID: metrics[0].orgID, metrics: sketchMetrics, start: bounds.first!, end: bounds.last!, logger: logger)
        }
        var result: [UUID: MetricSeries] = [:]
        for metric in metrics {
            result[metric.id] = try await series(
                metric: metric, start: start, end: end, granularity: granularity, timeZone: timeZone,
                topGroups: topGroups, prefetched: prefetched, logger: logger)
        }
        return result
    }

    /// Series rows of stored buckets, one statement for all `metricIDs`, by metric.
    func directRows(orgID: UUID, metricIDs: [UUID], read: Granularity, start: Date, end: Date, logger: Logger) async throws
        -> [UUID: [Row]]
    {
        var result: [UUID: [Row]] = [:]
        let statement = RollupStatements.Series(
            orgID: orgID, metricIDs: metricIDs, granularity: read.rawValue, start: start, end: end)
        for try await (metricID, group, buckets, values, counts, sums, mins, maxes) in try await client.execute(
            statement, logger: logger)
        {
            var rows = result[metricID] ?? []
            for index in buckets.indices {
                // The state without its sketch: enough for the totals of non-sketch metrics.
                var state = RollupState()
                state.count = counts[index]
                state.sum = sums[index]
                state.min = mins[index].isNaN ? nil : mins[index]
                state.max = maxes[index].isNaN ? nil : maxes[index]
                rows.append(
                    Row(
                        granularity: read, bucket: Date(timeIntervalSince1970: Double(buckets[index]) / 1_000_000),
                        group: group, state: state, value: values[index].isNaN ? nil : values[index]))
            }
            result[metricID] = rows
        }
        return result
    }

    /// Merged states per group over [start, end) from the coarsest tiling buckets.
    func coverTotals(orgID: UUID, metrics: [MetricDefinition], start: Date, end: Date, logger: Logger) async throws
        -> [UUID: [String: RollupState]]
    {
        let cover = Self.cover(start: start, end: end)
        let aggregations = Dictionary(metrics.map { ($0.id, $0.aggregation) }, uniquingKeysWith: { first, _ in first })
        let statement = RollupStatements.Cover(
            orgID: orgID, metricIDs: metrics.map(\.id),
            bounds: [
                cover.days.0, cover.days.1, cover.hours.0, cover.hours.1, cover.hours.2, cover.hours.3,
                cover.minutes.0, cover.minutes.1, cover.minutes.2, cover.minutes.3,
            ])
        var totals: [UUID: [String: RollupState]] = [:]
        for try await (metricID, group, count, sum, min, max, sketch) in try await client.execute(statement, logger: logger) {
            guard let aggregation = aggregations[metricID] else { continue }
            totals[metricID, default: [:]][group, default: RollupState()].merge(
                RollupState(
                    count: count, sum: sum, min: min, max: max, sketch: sketch.map { Array($0.readableBytesView) },
                    aggregation: aggregation))
        }
        return totals
    }

    public func series(
        metric: MetricDefinition, start: Date, end: Date, granularity: Granularity, timeZone: TimeZone,
        topGroups: Int = 10, logger: Logger
    ) async throws -> MetricSeries {
        try await series(
            metric: metric, start: start, end: end, granularity: granularity, timeZone: timeZone, topGroups: topGroups,
            prefetched: nil, logger: logger)
    }

    func series(
        metric: MetricDefinition, start: Date, end: Date, granularity: Granularity, timeZone: TimeZone,
        topGroups: Int, prefetched: Prefetched?, logger: Logger
    ) async throws -> MetricSeries {
        let bounds = try Self.boundaries(start: start, end: end, granularity: granularity, timeZone: timeZone)
        let spanStart = bounds.first!, spanEnd = bounds.last!
        let read = Self.readGranularity(for: bounds, requested: granularity)
        let aggregation = metric.aggregation
        let direct = read == granularity
        let needsSketch = aggregation.needsSketch
        let grouped = metric.groupBy != nil

        // The series rows: the stored bucket's own value when it is the point (three
        // columns: decoding dominates a dashboard's time), else merged states.
        let seriesRows: [Row]
        if direct {
            // One row per group with its buckets as arrays: per-row protocol and decoding
            // overhead dominated a dashboard of 24,000 hourly rows.
            if let prefetched {
                seriesRows = prefetched.rows[metric.id] ?? []
            } else {
                seriesRows = try await directRows(
                    orgID: metric.orgID, metricIDs: [metric.id], read: read, start: spanStart, end: spanEnd, logger: logger)[
                        metric.id] ?? []
            }
        } else {
            seriesRows = try await rows(
                metric: metric, query: """
                    SELECT granularity, bucket_start, group_value, count, sum, min, max, value, \(unescaped: needsSketch ? "sketch" : "NULL::bytea")
                    FROM rollups
                    WHERE org_id = \(metric.orgID) AND metric_id = \(metric.id) AND granularity = \(read.rawValue)
                      AND bucket_start >= \(spanStart) AND bucket_start < \(spanEnd)
                      AND (group_value = '' OR \(grouped))
                    """, logger: logger)
        }

        // The total (and group totals): for counts, sums, averages and extremes, the
        // series rows themselves tile the span; a sketch metric merges the coarsest
        // buckets that tile it instead (a few dozen sketches rather than hundreds).
        var totals: [String: RollupState] = [:]
        if needsSketch {
            if let prefetched {
                totals = prefetched.totals[metric.id] ?? [:]
            } else {
                totals = try await coverTotals(orgID: metric.orgID, metrics: [metric], start: spanStart, end: spanEnd, logger: logger)[
                    metric.id] ?? [:]
            }
        } else {
            for row in seriesRows { totals[row.group, default: RollupState()].merge(row.state) }
        }

        var byGroup: [String: [Row]] = [:]
        for row in seriesRows { byGroup[row.group, default: []].append(row) }

        /// Each bucket's stored value when a row is its point, else its rows' merged state
        /// (several groups' rows merge too: single groups' values do not add up in general).
        func points(_ rows: [Row], merging: Bool = false) -> [MetricSeries.Point] {
            let direct = direct && !merging
            var states = [RollupState?](repeating: nil, count: bounds.count - 1)
            var values = [Double?](repeating: nil, count: bounds.count - 1)
            for row in rows {
                guard let index = Self.bucketIndex(of: row.bucket, in: bounds) else { continue }
                if direct {
                    values[index] = row.value
                    states[index] = row.state
                } else {
                    if states[index] == nil { states[index] = RollupState() }
                    states[index]!.merge(row.state)
                }
            }
            return (0..<(bounds.count - 1)).map { index in
                let value: Double?
                if let state = states[index] {
                    value = direct ? values[index] : state.value(for: aggregation)
                } else {
                    value = aggregation.isAdditive ? 0 : nil
                }
                return MetricSeries.Point(t: bounds[index], value: value)
            }
        }

        let total = (totals[""] ?? RollupState()).value(for: aggregation)
        var groups: [MetricSeries.Group] = []
        if grouped {
            let ranked = totals.filter { $0.key.hasPrefix("=") }
                .map { (name: String($0.key.dropFirst()), key: $0.key, value: $0.value.value(for: aggregation)) }
                .sorted { ($0.value ?? -.infinity, $1.name) > ($1.value ?? -.infinity, $0.name) }
            let top = ranked.prefix(max(topGroups, 0))
            for entry in top {
                groups.append(.init(name: entry.name, total: entry.value, points: points(byGroup[entry.key] ?? [])))
            }
            let rest = ranked.dropFirst(top.count)
            if !rest.isEmpty {
                var otherTotal = RollupState()
                var otherRows: [Row] = []
                for entry in rest { otherTotal.merge(totals[entry.key]!) }
                if direct && needsSketch {
                    // The series rows carry no sketches; "other" merges states.
                    let keys = rest.map(\.key)
                    otherRows = try await rows(
                        metric: metric, query: """
                            SELECT granularity, bucket_start, group_value, count, sum, min, max, value, sketch
                            FROM rollups
                            WHERE org_id = \(metric.orgID) AND metric_id = \(metric.id) AND granularity = \(read.rawValue)
                              AND bucket_start >= \(spanStart) AND bucket_start < \(spanEnd) AND group_value = ANY(\(keys)::text[])
                            """, logger: logger)
                } else {
                    for entry in rest { otherRows += byGroup[entry.key] ?? [] }
                }
                groups.append(
                    .init(
                        name: Self.otherGroup, total: otherTotal.value(for: aggregation),
                        points: points(otherRows, merging: true)))
            }
        }
        return MetricSeries(
            metric: metric, granularity: granularity, timeZone: timeZone, start: spanStart, end: spanEnd, total: total,
            points: points(byGroup[""] ?? []), groups: groups)
    }

    /// Index of the output bucket holding `date` (boundaries are sorted).
    static func bucketIndex(of date: Date, in bounds: [Date]) -> Int? {
        guard date >= bounds.first!, date < bounds.last! else { return nil }
        var low = 0, high = bounds.count - 1
        while high - low > 1 {
            let middle = (low + high) / 2
            if bounds[middle] <= date { low = middle } else { high = middle }
        }
        return low
    }

    /// Day, hour and minute pieces that tile [start, end) (both minute-aligned).
    static func cover(start: Date, end: Date) -> (
        days: (Date, Date), hours: (Date, Date, Date, Date), minutes: (Date, Date, Date, Date)
    ) {
        let dayStart = Granularity.day.ceiling(of: start), dayEnd = Granularity.day.bucket(of: end)
        if dayStart < dayEnd {
            let hourStart = Granularity.hour.ceiling(of: start), hourEnd = Granularity.hour.bucket(of: end)
            return ((dayStart, dayEnd), (hourStart, dayStart, dayEnd, hourEnd), (start, hourStart, hourEnd, end))
        }
        let hourStart = Granularity.hour.ceiling(of: start), hourEnd = Granularity.hour.bucket(of: end)
        if hourStart < hourEnd {
            return ((end, end), (hourStart, hourEnd, end, end), (start, hourStart, hourEnd, end))
        }
        return ((end, end), (end, end, end, end), (start, end, end, end))
    }

    func rows(metric: MetricDefinition, query: PostgresQuery, logger: Logger) async throws -> [Row] {
        var result: [Row] = []
        for try await row in try await client.query(query, logger: logger) {
            let (granularityName, bucket, group, count, sum, min, max, value, sketch) = try row.decode(
                (String, Date, String, Int64, Double, Double?, Double?, Double?, ByteBuffer?).self)
            result.append(
                Row(
                    granularity: Granularity(rawValue: granularityName) ?? .minute, bucket: bucket, group: group,
                    state: RollupState(
                        count: count, sum: sum, min: min, max: max, sketch: sketch.map { Array($0.readableBytesView) },
                        aggregation: metric.aggregation),
                    value: value))
        }
        return result
    }
}
