import ArgumentParser
import Core
import Logging

struct MigrateCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "migrate",
        abstract: "Apply pending schema migrations (also done at every start, under an advisory lock).")

    @OptionGroup var options: GlobalOptions

    func run() async throws {
        let configuration = try options.resolve()
        let logger = Logger(label: "analyticspro.migrate")
        let session = try await DatabaseSession.open(configuration, logger: logger)
        defer { session.close() }
        let versions = try await session.setup.url.withConnection(logger: logger) { connection in
            try await Migrator.appliedVersions(on: connection, logger: logger)
        }
        print("schema at \(versions.last ?? "nothing") (\(versions.count) migrations applied)")
    }
}
