import ArgumentParser
import Jobs
import Scheduler

struct WorkerCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "worker",
        abstract: "Run job workers.",
        discussion: "SIGTERM stops claiming, lets running jobs finish within --shutdown-timeout, puts the rest back and exits 0.")

    @Option(help: "Queues and their concurrency, e.g. default=20,maintenance=2 (a bare name gets --concurrency).")
    var queues: String?

    @Option(help: "Concurrency of a queue named without one.")
    var concurrency: Int = 10

    @Option(name: .customLong("shutdown-timeout"), help: "Seconds running jobs may take to finish on shutdown.")
    var shutdownTimeout: Int = 25

    @Option(name: .customLong("lease"), help: "Seconds a running job's lease lasts without a heartbeat.")
    var leaseSeconds: Int = 60

    @OptionGroup var options: GlobalOptions

    func run() async throws {
        var runtime = ProcessRuntime(options: options, roles: [.worker])
        runtime.workerConfiguration = try Self.workerConfiguration(
            queues: queues, concurrency: concurrency, shutdownTimeout: shutdownTimeout, lease: leaseSeconds)
        try await runtime.run()
    }

    static func workerConfiguration(queues: String?, concurrency: Int, shutdownTimeout: Int, lease: Int) throws -> WorkerConfiguration {
        guard (1...10_000).contains(concurrency) else {
            throw CLIFailure.usage("invalid --concurrency '\(concurrency)': must be 1 to 10000")
        }
        guard shutdownTimeout >= 0 else { throw CLIFailure.usage("invalid --shutdown-timeout: must be 0 or more") }
        guard lease >= 2 else { throw CLIFailure.usage("invalid --lease: must be at least 2 seconds") }
        var configuration = WorkerConfiguration(queues: JobCatalog.defaultQueues)
        if let queues {
            do {
                configuration.queues = try WorkerConfiguration.parseQueues(queues, defaultConcurrency: concurrency)
            } catch {
                throw CLIFailure.usage("\(error)")
            }
        }
        configuration.shutdownTimeout = .seconds(shutdownTimeout)
        configuration.leaseDuration = .seconds(lease)
        configuration.heartbeatInterval = .seconds(max(1, lease / 4))
        return configuration
    }
}
