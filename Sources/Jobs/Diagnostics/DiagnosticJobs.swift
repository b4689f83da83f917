import Scheduler

/// Does nothing: the unit of the queue benchmark, and a cheap end-to-end check that
/// workers are claiming (`analyticspro jobs enqueue diagnostics.noop`).
public struct NoopJob: JobDefinition {
    public struct Arguments: Codable, Sendable {
        /// Wall-clock time of enqueue (seconds since 1970), for latency measurements.
        public var enqueuedAt: Double?
        public init(enqueuedAt: Double? = nil) { self.enqueuedAt = enqueuedAt }
    }

    public static let kind = "diagnostics.noop"
    let onRun: @Sendable (Arguments) -> Void

    public init(onRun: @escaping @Sendable (Arguments) -> Void = { _ in }) {
        self.onRun = onRun
    }

    public func run(_ arguments: Arguments, context: JobContext) async throws -> JobOutcome {
        onRun(arguments)
        return .success
    }
}

/// Sleeps for a while: lets an operator watch leases, heartbeats, rescue and graceful
/// shutdown on a live system.
public struct SleepJob: JobDefinition {
    public struct Arguments: Codable, Sendable {
        public var milliseconds: Int
        public init(milliseconds: Int) { self.milliseconds = milliseconds }
    }

    public static let kind = "diagnostics.sleep"
    public init() {}

    public func run(_ arguments: Arguments, context: JobContext) async throws -> JobOutcome {
        try await Task.sleep(for: .milliseconds(max(0, arguments.milliseconds)))
        return .success
    }
}
