import ArgumentParser
import Core
import Foundation
import Logging

/// Flags shared by every command; each overrides its environment variable.
struct GlobalOptions: ParsableArguments {
    @Option(name: .customLong("database-url"), help: "PostgreSQL URL (env DATABASE_URL; unset: embedded cluster).")
    var databaseURL: String?

    @Option(help: "HTTP bind address (env HOST, default 127.0.0.1).")
    var host: String?

    @Option(help: "HTTP port (env PORT, default 8080).")
    var port: String?

    @Option(name: .customLong("state-dir"), help: "Local state folder (env STATE_DIR, default ./.analyticspro).")
    var stateDirectory: String?

    @Option(name: .customLong("log-level"), help: "Log level (env LOG_LEVEL, default info).")
    var logLevel: String?

    /// The validated configuration; an invalid value prints one line and exits 2.
    func resolve() throws -> AppConfiguration {
        do {
            let configuration = try AppConfiguration.resolve(
                overrides: .init(
                    databaseURL: databaseURL, host: host, port: port,
                    stateDirectory: stateDirectory, logLevel: logLevel))
            LogSetup.bootstrapOnce(level: configuration.logLevel)
            return configuration
        } catch {
            throw CLIFailure.usage(error.description)
        }
    }
}

/// Ends a command with one line on stderr and an exit code.
enum CLIFailure {
    /// Bad input (configuration, arguments): exit 2.
    static func usage(_ message: String) -> ExitCode {
        printError(message)
        return ExitCode(2)
    }

    /// The command could not do its work (database down, port busy): exit 1.
    static func runtime(_ message: String) -> ExitCode {
        printError(message)
        return ExitCode(1)
    }

    static func printError(_ message: String) {
        FileHandle.standardError.write(Data("analyticspro: error: \(message)\n".utf8))
    }
}

enum LogSetup {
    nonisolated(unsafe) private static var bootstrapped = false

    /// Log lines go to stderr so stdout stays for command output (JSON, fire times).
    static func bootstrapOnce(level: Logger.Level) {
        guard !bootstrapped else { return }
        bootstrapped = true
        LoggingSystem.bootstrap { label in
            var handler = DeferredMetadataLogHandler(wrapping: StreamLogHandler.standardError(label: label))
            handler.logLevel = level
            return handler
        }
    }
}
