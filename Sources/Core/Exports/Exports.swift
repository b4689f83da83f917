import Foundation

/// Names shared by the exports API (which enqueues) and the export job (which runs).
public enum Exports {
    public static let jobKind = "exports.generate"
    public static let expiryJobKind = "exports.expire"
    public static let queue = "exports"

    public enum Kind: String, Sendable, CaseIterable { case events, metric, dashboard }

    public enum Format: String, Sendable, CaseIterable {
        case csv, json, pdf

        public var contentType: String {
            switch self {
            case .csv: "text/csv; charset=utf-8"
            case .json: "application/json"
            case .pdf: "application/pdf"
            }
        }
    }

    /// Event exports in `json` are newline-delimited: one object per event, streamable.
    public static func contentType(kind: Kind, format: Format) -> String {
        kind == .events && format == .json ? "application/x-ndjson" : format.contentType
    }

    public struct JobArguments: Codable, Sendable, Equatable {
        public var orgID: UUID
        public var exportID: UUID

        public init(orgID: UUID, exportID: UUID) {
            self.orgID = orgID
            self.exportID = exportID
        }
    }
}
