import Foundation

/// A job this process claimed and now runs.
struct ClaimedJob: Sendable {
    let id: Int64
    let kind: String
    let queue: String
    let arguments: [UInt8]
    let attempt: Int
    let maxAttempts: Int
    let timeout: Duration?
    let enqueuedAt: Date
    let uniqueKey: String?
}

/// A finished attempt waiting to be written back.
struct Completion: Sendable {
    let id: Int64
    let attempt: Int
    let outcome: JobOutcome
}
