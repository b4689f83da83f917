import Foundation
import Logging

/// A kind of background work: a name, `Codable` arguments and the code that runs it.
///
/// Handlers must be idempotent: a job whose worker died runs again after its lease.
public protocol JobDefinition: Sendable {
    associatedtype Arguments: Codable & Sendable

    /// Stable name stored with each job; renaming it orphans queued jobs.
    static var kind: String { get }
    /// Queue used when the caller does not name one.
    static var defaultQueue: String { get }
    static var defaultMaxAttempts: Int { get }
    /// Time allowed per attempt; nil means no limit beyond the lease heartbeat.
    static var defaultTimeout: Duration? { get }

    func run(_ arguments: Arguments, context: JobContext) async throws -> JobOutcome
}

extension JobDefinition {
    public static var defaultQueue: String { "default" }
    public static var defaultMaxAttempts: Int { 20 }
    public static var defaultTimeout: Duration? { nil }
}

/// What a handler decided about its job. Throwing counts as `.retry(after: nil)` with
/// the error's description recorded.
public enum JobOutcome: Sendable, Equatable {
    case success
    /// Failed attempt: run again after `after` (nil: exponential backoff with jitter), or
    /// discard when no attempts are left.
    case retry(after: Duration? = nil, reason: String)
    /// Not now: run again after the delay; the attempt does not count.
    case snooze(Duration)
    /// Stop for good, deliberately (state `cancelled`).
    case cancel(reason: String)
    /// Stop for good, as a permanent failure (state `discarded`).
    case discard(reason: String)
}

/// What a handler knows about the job it runs.
public struct JobContext: Sendable {
    public let id: Int64
    public let kind: String
    public let queue: String
    /// 1 on the first run.
    public let attempt: Int
    public let maxAttempts: Int
    public let enqueuedAt: Date
    public var logger: Logger
    /// The key that kept a second copy of this job from being enqueued, if it had one.
    public var uniqueKey: String? = nil
}
