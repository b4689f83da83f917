import Foundation

/// A report, independent of the database: pages are computed from its blocks when it
/// is rendered.
public struct ReportDocument: Sendable {
    public var title: String
    public var subtitle: String?
    public var period: ReportPeriod?
    /// IANA zone that time axes and the footer are written in.
    public var timeZone: TimeZone
    public var page: PageSetup
    public var branding: Branding
    /// Printed in the footer and stored as the PDF's creation date, so the same input
    /// always gives the same bytes.
    public var generatedAt: Date
    public var blocks: [ReportBlock]

    public init(
        title: String, subtitle: String? = nil, period: ReportPeriod? = nil, timeZone: TimeZone = .gmt,
        page: PageSetup = PageSetup(), branding: Branding = .neutral, generatedAt: Date, blocks: [ReportBlock]
    ) {
        self.title = title
        self.subtitle = subtitle
        self.period = period
        self.timeZone = timeZone
        self.page = page
        self.branding = branding
        self.generatedAt = generatedAt
        self.blocks = blocks
    }
}

public struct ReportPeriod: Sendable, Equatable {
    public var start: Date
    public var end: Date

    public init(start: Date, end: Date) {
        self.start = start
        self.end = end
    }
}

public struct PageSetup: Sendable, Equatable {
    public enum Size: String, Sendable, CaseIterable { case a4, letter }
    public enum Orientation: String, Sendable, CaseIterable { case portrait, landscape }

    public var size: Size
    public var orientation: Orientation

    public init(size: Size = .a4, orientation: Orientation = .portrait) {
        self.size = size
        self.orientation = orientation
    }

    /// Width and height in points (1/72 inch).
    public var dimensions: (width: Double, height: Double) {
        let portrait: (Double, Double) = switch size {
        case .a4: (595.28, 841.89)
        case .letter: (612, 792)
        }
        return orientation == .portrait ? portrait : (portrait.1, portrait.0)
    }
}

public enum ReportBlock: Sendable {
    case heading(String)
    case paragraph(String)
    case kpis([KPITile])
    case chart(ChartBlock)
    case table(TableBlock)
    case pageBreak
}

public struct KPITile: Sendable {
    public var label: String
    public var value: Double?
    public var unit: String?
    /// The same figure over the previous period, for the change mark.
    public var previous: Double?

    public init(label: String, value: Double?, unit: String? = nil, previous: Double? = nil) {
        self.label = label
        self.value = value
        self.unit = unit
        self.previous = previous
    }
}

public struct ChartBlock: Sendable {
    public enum Kind: String, Sendable, CaseIterable {
        case line, area, bar
        case stackedBar = "stacked_bar"
    }

    public struct Series: Sendable {
        public var name: String
        public var points: [Point]

        public init(name: String, points: [Point]) {
            self.name = name
            self.points = points
        }
    }

    public struct Point: Sendable {
        public var time: Date
        public var value: Double

        public init(time: Date, value: Double) {
            self.time = time
            self.value = value
        }
    }

    public var title: String
    public var kind: Kind
    public var series: [Series]
    public var unit: String?

    public init(title: String, kind: Kind, series: [Series], unit: String? = nil) {
        self.title = title
        self.kind = kind
        self.series = series
        self.unit = unit
    }

    /// Whether anything can be drawn: at least one finite value.
    public var hasData: Bool {
        series.contains { $0.points.contains { $0.value.isFinite } }
    }
}

public struct TableBlock: Sendable {
    public enum Alignment: Sendable { case leading, trailing }

    public var title: String?
    public var columns: [String]
    public var rows: [[String]]

    public init(title: String? = nil, columns: [String], rows: [[String]]) {
        self.title = title
        self.columns = columns
        self.rows = rows
    }

    /// Numeric columns are right-aligned: every non-empty cell parses as a number.
    public var alignments: [Alignment] {
        columns.indices.map { column in
            let cells = rows.compactMap { column < $0.count ? $0[column] : nil }.filter { !$0.isEmpty }
            return !cells.isEmpty && cells.allSatisfy { Double($0.replacingOccurrences(of: ",", with: "")) != nil }
                ? .trailing : .leading
        }
    }
}
