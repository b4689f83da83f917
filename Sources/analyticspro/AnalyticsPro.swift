import ArgumentParser
import Core

@main
struct AnalyticsPro: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "analyticspro",
        abstract: "AnalyticsPro: event ingestion, rollups, alerts and reports over one PostgreSQL.",
        discussion: """
            Settings come from the environment and can be overridden by the flags of each command:
            \(AppConfiguration.Setting.allCases.map { "  \($0.rawValue.padding(toLength: 13, withPad: " ", startingAt: 0)) \($0.help)" }.joined(separator: "\n"))

            Without DATABASE_URL every command uses the embedded PostgreSQL cluster of STATE_DIR,
            starting it for the command's duration when it is not already running.
            """,
        subcommands: [
            RunCommand.self, ServeCommand.self, WorkerCommand.self, SchedulerCommand.self, MigrateCommand.self,
            OrgCommand.self,
            JobsCommand.self, CronCommand.self, ReportCommand.self, BenchCommand.self,
        ],
        defaultSubcommand: RunCommand.self
    )
}
