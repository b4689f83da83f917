import Foundation
import Logging
import PostgresNIO

/// Puts jobs on the queue: one at a time, inside a caller's transaction, or thousands
/// in one statement.
public struct JobQueue: Sendable {
    /// The NOTIFY channel workers listen on; the payload is the queue name.
    public static let notifyChannel = "analyticspro_jobs"

    public let client: PostgresClient

    public init(client: PostgresClient) {
        self.client = client
    }

    /// One job to insert, already encoded.
    public struct NewJob: Sendable {
        public var kind: String
        public var arguments: String
        public var options: EnqueueOptions
        var maxAttempts: Int
        var timeout: Duration?

        public init<J: JobDefinition>(_ job: J.Type, _ arguments: J.Arguments, options: EnqueueOptions = .init()) throws {
            self.kind = J.kind
            self.arguments = String(decoding: try JSONEncoder().encode(arguments), as: UTF8.self)
            var options = options
            options.queue = options.queue ?? J.defaultQueue
            self.options = options
            self.maxAttempts = options.maxAttempts ?? J.defaultMaxAttempts
            self.timeout = options.timeout ?? J.defaultTimeout
        }

        /// A job by kind name, for operators and tools that do not link the definition.
        public init(kind: String, arguments: String, options: EnqueueOptions = .init()) {
            self.kind = kind
            self.arguments = arguments
            var options = options
            options.queue = options.queue ?? "default"
            self.options = options
            self.maxAttempts = options.maxAttempts ?? 20
            self.timeout = options.timeout
        }

        func validate() throws {
            guard !kind.isEmpty else { throw JobQueueError("job kind is empty") }
            guard (0...9).contains(options.priority) else { throw JobQueueError("priority must be 0 to 9") }
            guard maxAttempts > 0 else { throw JobQueueError("max attempts must be at least 1") }
        }
    }

    /// Enqueues one job in its own transaction.
    /// - Returns: the job id, or nil when a pending job holds the same unique key.
    @discardableResult
    public func enqueue<J: JobDefinition>(
        _ job: J.Type, _ arguments: J.Arguments, options: EnqueueOptions = .init(), logger: Logger
    ) async throws -> Int64? {
        let new = try NewJob(job, arguments, options: options)
        return try await client.withConnection { connection in
            try await Self.insert(new, on: connection, logger: logger)
        }
    }

    /// Enqueues a job built by kind name (operators, tools).
    @discardableResult
    public func enqueue(_ job: NewJob, logger: Logger) async throws -> Int64? {
        try await client.withConnection { connection in
            try await Self.insert(job, on: connection, logger: logger)
        }
    }

    /// Enqueues inside the caller's transaction: the job exists iff that transaction
    /// commits, and workers are woken only then (NOTIFY is transactional).
    @discardableResult
    public static func enqueue<J: JobDefinition>(
        _ job: J.Type, _ arguments: J.Arguments, options: EnqueueOptions = .init(),
        on connection: PostgresConnection, logger: Logger
    ) async throws -> Int64? {
        try await insert(try NewJob(job, arguments, options: options), on: connection, logger: logger)
    }

    static func insert(_ job: NewJob, on connection: PostgresConnection, logger: Logger) async throws -> Int64? {
        try job.validate()
        let options = job.options
        let timeoutMS = job.timeout.map { Int32(clamping: $0.milliseconds) }
        let rows = try await connection.query(
            """
            WITH inserted AS (
                INSERT INTO jobs (kind, queue, args, priority, state, max_attempts, run_at, timeout_ms, unique_key, org_id)
                VALUES (
                    \(job.kind), \(options.queue ?? "default"), \(job.arguments)::jsonb, \(Int16(options.priority)),
                    CASE WHEN \(options.runAt)::timestamptz > now() THEN 'scheduled' ELSE 'available' END,
                    \(Int32(job.maxAttempts)), coalesce(\(options.runAt)::timestamptz, now()), \(timeoutMS),
                    \(options.uniqueKey), \(options.orgID))
                ON CONFLICT (unique_key)
                    WHERE unique_key IS NOT NULL AND state IN ('available', 'scheduled', 'running', 'retryable')
                    DO NOTHING
                RETURNING id, queue, state
            )
            SELECT id, CASE WHEN state = 'available' THEN pg_notify(\(notifyChannel), queue) END IS NULL FROM inserted
            """, logger: logger)
        for try await (id, _) in rows.decode((Int64, Bool).self) { return id }
        return nil
    }

    /// Enqueues many jobs in one statement: COPY when no job has a unique key or a
    /// run-at, else an INSERT of unnested arrays that skips held unique keys.
    /// - Returns: how many were inserted (unique-key duplicates are skipped).
    @discardableResult
    public func enqueueMany(_ jobs: [NewJob], logger: Logger) async throws -> Int {
        try await client.withConnection { connection in
            try await Self.enqueueMany(jobs, on: connection, logger: logger)
        }
    }

    /// Bulk enqueue inside the caller's transaction.
    @discardableResult
    public static func enqueueMany(_ jobs: [NewJob], on connection: PostgresConnection, logger: Logger) async throws -> Int {
        guard !jobs.isEmpty else { return 0 }
        if canCopy(jobs) { return try await copy(jobs, on: connection, logger: logger) }
        var kinds: [String] = [], queues: [String] = [], args: [String] = [], priorities: [Int16] = []
        var attempts: [Int32] = [], runAts: [Date] = [], timeouts: [Int32] = [], keys: [String] = [], orgs: [String] = []
        for job in jobs {
            try job.validate()
            kinds.append(job.kind)
            queues.append(job.options.queue ?? "default")
            args.append(job.arguments)
            priorities.append(Int16(job.options.priority))
            attempts.append(Int32(job.maxAttempts))
            runAts.append(job.options.runAt ?? Self.noDate)
            timeouts.append(job.timeout.map { Int32(clamping: $0.milliseconds) } ?? 0)
            keys.append(job.options.uniqueKey ?? "")
            orgs.append(job.options.orgID?.uuidString ?? "")
        }
        // Arrays carry no NULLs: empty string, zero and the epoch stand for "none".
        let rows = try await connection.query(
            """
            WITH input AS (
                SELECT * FROM unnest(
                    \(kinds)::text[], \(queues)::text[], \(args)::text[], \(priorities)::int2[], \(attempts)::int4[],
                    \(runAts)::timestamptz[], \(timeouts)::int4[], \(keys)::text[], \(orgs)::text[]
                ) AS r(kind, queue, args, priority, max_attempts, run_at, timeout_ms, unique_key, org_id)
            ), inserted AS (
                INSERT INTO jobs (kind, queue, args, priority, state, max_attempts, run_at, timeout_ms, unique_key, org_id)
                SELECT kind, queue, args::jsonb, priority,
                       CASE WHEN run_at > now() THEN 'scheduled' ELSE 'available' END,
                       max_attempts, CASE WHEN run_at = 'epoch' THEN now() ELSE run_at END,
                       nullif(timeout_ms, 0), nullif(unique_key, ''), nullif(org_id, '')::uuid
                FROM input
                ON CONFLICT (unique_key)
                    WHERE unique_key IS NOT NULL AND state IN ('available', 'scheduled', 'running', 'retryable')
                    DO NOTHING
                RETURNING queue, state
            ), woken AS (
                SELECT pg_notify(\(notifyChannel), queue) FROM (SELECT DISTINCT queue FROM inserted WHERE state = 'available') q
            )
            SELECT (SELECT count(*) FROM inserted)::int8, (SELECT count(*) FROM woken)::int8
            """, logger: logger)
        for try await (inserted, _) in rows.decode((Int64, Int64).self) { return Int(inserted) }
        return 0
    }

    static let noDate = Date(timeIntervalSince1970: 0)
}

/// A request the queue refuses (bad options, unknown job, wrong state).
public struct JobQueueError: Error, CustomStringConvertible, Sendable {
    public let description: String
    public init(_ description: String) { self.description = description }
}
