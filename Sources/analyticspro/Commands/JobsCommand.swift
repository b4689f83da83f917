import ArgumentParser
import Core
import Foundation
import Logging
import Scheduler

struct JobsCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "jobs", abstract: "Inspect and manage the job queue.",
        subcommands: [List.self, Show.self, Retry.self, Cancel.self, Stats.self, Enqueue.self])

    /// Runs `body` against the configured database.
    static func withQueue<T: Sendable>(
        _ options: GlobalOptions, _ body: @escaping @Sendable (JobQueue, Logger) async throws -> T
    ) async throws -> T {
        let configuration = try options.resolve()
        let logger = Logger(label: "analyticspro.jobs")
        let session = try await DatabaseSession.open(configuration, logger: logger)
        defer { session.close() }
        do {
            return try await session.withClient { client in try await body(JobQueue(client: client), logger) }
        } catch let error as JobQueueError {
            throw CLIFailure.usage(error.description)
        }
    }

    static func printJSON<T: Encodable>(_ value: T) throws {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .prettyPrinted]
        encoder.dateEncodingStrategy = .iso8601
        encoder.keyEncodingStrategy = .convertToSnakeCase
        print(String(decoding: try encoder.encode(value), as: UTF8.self))
    }

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List jobs, newest first.")
        @Option(help: "available, scheduled, running, retryable, completed, discarded or cancelled.") var state: String?
        @Option var queue: String?
        @Option var kind: String?
        @Option var limit: Int = 50
        @OptionGroup var options: GlobalOptions

        func run() async throws {
            let (state, queue, kind, limit) = (self.state, self.queue, self.kind, self.limit)
            let jobs = try await JobsCommand.withQueue(options) { queueAPI, logger in
                try await queueAPI.list(state: state, queue: queue, kind: kind, limit: limit, logger: logger)
            }
            let formatter = ISO8601DateFormatter()
            print("ID\tSTATE\tQUEUE\tKIND\tATTEMPT\tRUN_AT")
            for job in jobs {
                print("\(job.id)\t\(job.state)\t\(job.queue)\t\(job.kind)\t\(job.attempt)/\(job.maxAttempts)\t\(formatter.string(from: job.runAt))")
            }
        }
    }

    struct Show: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Show one job as JSON, with its error history.")
        @Argument var id: Int64
        @OptionGroup var options: GlobalOptions

        func run() async throws {
            let id = self.id
            guard let job = try await JobsCommand.withQueue(options, { queue, logger in try await queue.find(id: id, logger: logger) })
            else { throw CLIFailure.runtime("no job \(id)") }
            try JobsCommand.printJSON(job)
        }
    }

    struct Retry: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Make a job that is not running available now.")
        @Argument var id: Int64
        @OptionGroup var options: GlobalOptions

        func run() async throws {
            let id = self.id
            try await JobsCommand.withQueue(options) { queue, logger in try await queue.retry(id: id, logger: logger) }
            print("job \(id) is available")
        }
    }

    struct Cancel: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Cancel a job that has not started.")
        @Argument var id: Int64
        @OptionGroup var options: GlobalOptions

        func run() async throws {
            let id = self.id
            try await JobsCommand.withQueue(options) { queue, logger in try await queue.cancel(id: id, logger: logger) }
            print("job \(id) cancelled")
        }
    }

    struct Stats: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Counts by queue and state, age of the oldest runnable job, failures in the last hour (JSON).")
        @OptionGroup var options: GlobalOptions

        func run() async throws {
            let stats = try await JobsCommand.withQueue(options) { queue, logger in
                try await JobStats.fetch(client: queue.client, logger: logger)
            }
            try JobsCommand.printJSON(stats)
        }
    }

    struct Enqueue: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Enqueue a job by kind with JSON arguments; prints its id.")
        @Argument(help: "Job kind, e.g. diagnostics.noop or maintenance.partitions.") var kind: String
        @Option(help: "Arguments as a JSON object.") var args: String = "{}"
        @Option var queue: String?
        @Option(name: .customLong("unique-key")) var uniqueKey: String?
        @OptionGroup var options: GlobalOptions

        func run() async throws {
            guard let object = try? JSONSerialization.jsonObject(with: Data(args.utf8)), object is [String: Any] else {
                throw CLIFailure.usage("invalid --args: must be a JSON object")
            }
            let job = JobQueue.NewJob(kind: kind, arguments: args, options: .init(queue: queue, uniqueKey: uniqueKey))
            let id = try await JobsCommand.withQueue(options) { queue, logger in
                try await queue.enqueue(job, logger: logger)
            }
            print(id.map { "\($0)" } ?? "not enqueued: a pending job holds that unique key")
        }
    }
}
