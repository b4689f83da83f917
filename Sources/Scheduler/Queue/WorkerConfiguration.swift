import Foundation

/// How a worker process runs its queues.
public struct WorkerConfiguration: Sendable {
    /// Queue name → how many of its jobs run at once in this process.
    public var queues: [String: Int]
    /// Most jobs claimed by one query.
    public var claimBatchSize = 500
    /// Fallback when no NOTIFY arrives (scheduled jobs coming due, a lost listener).
    public var pollInterval: Duration = .seconds(1)
    /// A running job whose lease is not renewed within this time is rescued.
    public var leaseDuration: Duration = .seconds(60)
    public var heartbeatInterval: Duration = .seconds(15)
    public var rescueInterval: Duration = .seconds(5)
    /// On shutdown, how long running jobs may take before they are cancelled and released.
    public var shutdownTimeout: Duration = .seconds(25)
    /// Finished jobs older than this are deleted.
    public var pruneAge: Duration = .seconds(24 * 3600)
    public var pruneInterval: Duration = .seconds(60)
    /// Identifies this process in `attempted_by`, so its leases can be renewed and released.
    public var workerID: String

    public init(queues: [String: Int] = ["default": 10]) {
        self.queues = queues
        self.workerID = Self.makeWorkerID()
    }

    static func makeWorkerID() -> String {
        let host = ProcessInfo.processInfo.hostName
        return "\(host):\(ProcessInfo.processInfo.processIdentifier):\(UUID().uuidString.prefix(8).lowercased())"
    }

    /// Parses `default=10,reports=2` (a bare name gets `defaultConcurrency`).
    public static func parseQueues(_ text: String, defaultConcurrency: Int = 10) throws -> [String: Int] {
        var queues: [String: Int] = [:]
        for part in text.split(separator: ",") {
            let pieces = part.split(separator: "=", maxSplits: 1).map { $0.trimmingCharacters(in: .whitespaces) }
            guard let name = pieces.first, !name.isEmpty,
                name.allSatisfy({ $0.isLetter || $0.isNumber || $0 == "_" || $0 == "-" || $0 == "." })
            else {
                throw JobQueueError("invalid queue '\(part)': expected NAME or NAME=CONCURRENCY")
            }
            let concurrency = pieces.count == 2 ? Int(pieces[1]) : defaultConcurrency
            guard let concurrency, (1...10_000).contains(concurrency) else {
                throw JobQueueError("invalid concurrency in '\(part)': must be 1 to 10000")
            }
            queues[name] = concurrency
        }
        guard !queues.isEmpty else { throw JobQueueError("no queues given") }
        return queues
    }
}
