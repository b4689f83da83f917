import API
import ArgumentParser
import Core
import Logging

struct ServeCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "serve", abstract: "Run the HTTP API (and WebSocket).")

    @OptionGroup var options: GlobalOptions

    func run() async throws {
        try await ProcessRuntime(options: options, roles: [.api]).run()
    }
}

struct RunCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "run", abstract: "Run the API, the workers and the scheduler in one process (the default).")

    @OptionGroup var options: GlobalOptions

    func run() async throws {
        try await ProcessRuntime(options: options, roles: ProcessRuntime.Role.allCases).run()
    }
}

struct SchedulerCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "scheduler",
        abstract: "Run the cron scheduler: due ticks become jobs, each exactly once however many schedulers run.")

    @OptionGroup var options: GlobalOptions

    func run() async throws {
        try await ProcessRuntime(options: options, roles: [.scheduler]).run()
    }
}
