import Foundation

/// A series as JSON: `{"metric", "granularity", "total", "points": [{"t", "value"}], "groups": {…}}`.
/// Written straight to bytes: a 12-widget dashboard has tens of thousands of points,
/// and a dictionary per point plus Foundation's date formatter cost more than the query.
public enum SeriesJSON {
    public static func object(_ series: MetricSeries) -> [UInt8] {
        var out: [UInt8] = [UInt8(ascii: "{")]
        writeFields(series, to: &out)
        out.append(UInt8(ascii: "}"))
        return out
    }

    /// The fields without the enclosing braces.
    public static func writeFields(_ series: MetricSeries, to out: inout [UInt8]) {
        // Day buckets start at local midnight: shown with the zone's offset. Others in UTC.
        let zone = series.granularity == .day ? series.timeZone : nil
        var writer = ISO8601Writer()
        func time(_ date: Date) {
            out.append(UInt8(ascii: "\""))
            writer.append(
                epochSeconds: Int64(date.timeIntervalSince1970.rounded(.down)),
                offsetSeconds: zone?.secondsFromGMT(for: date) ?? 0, to: &out)
            out.append(UInt8(ascii: "\""))
        }
        func number(_ value: Double?) {
            if let value, value.isFinite { JSONString.appendNumber(value, to: &out) } else { out += "null".utf8 }
        }
        func field(_ name: String) {
            if out.last != UInt8(ascii: "{") { out.append(UInt8(ascii: ",")) }
            JSONString.append(name, to: &out)
            out.append(UInt8(ascii: ":"))
        }
        func points(_ points: [MetricSeries.Point]) {
            out.append(UInt8(ascii: "["))
            for (index, point) in points.enumerated() {
                if index > 0 { out.append(UInt8(ascii: ",")) }
                out += #"{"t":"#.utf8
                time(point.t)
                out += #","value":"#.utf8
                number(point.value)
                out.append(UInt8(ascii: "}"))
            }
            out.append(UInt8(ascii: "]"))
        }
        field("metric")
        JSONString.append(series.metric.id.uuidString.lowercased(), to: &out)
        field("name")
        JSONString.append(series.metric.name, to: &out)
        field("aggregation")
        JSONString.append(series.metric.aggregation.rawValue, to: &out)
        field("granularity")
        JSONString.append(series.granularity.rawValue, to: &out)
        field("time_zone")
        JSONString.append(series.timeZone.identifier, to: &out)
        field("start")
        time(series.start)
        field("end")
        time(series.end)
        field("total")
        number(series.total)
        field("points")
        points(series.points)
        field("groups")
        out.append(UInt8(ascii: "{"))
        for group in series.groups {
            field(group.name)
            out += #"{"total":"#.utf8
            number(group.total)
            out += #","points":"#.utf8
            points(group.points)
            out.append(UInt8(ascii: "}"))
        }
        out.append(UInt8(ascii: "}"))
    }
}
