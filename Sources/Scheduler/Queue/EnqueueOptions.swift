import Foundation

/// Per-job settings for `enqueue`; anything left nil comes from the job's definition.
public struct EnqueueOptions: Sendable {
    public var queue: String?
    /// 0 (first) to 9 (last).
    public var priority: Int
    /// Run no earlier than this; nil means now.
    public var runAt: Date?
    public var maxAttempts: Int?
    public var timeout: Duration?
    /// While a job with this key is pending or running, enqueuing another is a no-op.
    public var uniqueKey: String?
    /// The organization the job works for, for listing and scoping.
    public var orgID: UUID?

    public init(
        queue: String? = nil, priority: Int = 0, runAt: Date? = nil, delay: Duration? = nil,
        maxAttempts: Int? = nil, timeout: Duration? = nil, uniqueKey: String? = nil, orgID: UUID? = nil
    ) {
        self.queue = queue
        self.priority = priority
        self.runAt = runAt ?? delay.map { Date().addingTimeInterval($0.seconds) }
        self.maxAttempts = maxAttempts
        self.timeout = timeout
        self.uniqueKey = uniqueKey
        self.orgID = orgID
    }
}

extension Duration {
    /// The duration in (fractional) seconds.
    public var seconds: Double {
        let parts = components
        return Double(parts.seconds) + Double(parts.attoseconds) / 1e18
    }

    var milliseconds: Int64 {
        let parts = components
        return parts.seconds * 1000 + parts.attoseconds / 1_000_000_000_000_000
    }
}
