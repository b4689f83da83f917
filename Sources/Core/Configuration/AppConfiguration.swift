import Foundation
import Logging

/// Process-wide settings, read from the environment and overridden by command-line flags.
///
/// Validated once at start (`resolve`), then trusted everywhere else.
public struct AppConfiguration: Sendable {
    /// `postgres://…` URL of an existing database; `nil` means the embedded cluster.
    public var databaseURL: DatabaseURL?
    public var host: String
    public var port: Int
    /// Where the embedded cluster and other local state live.
    public var stateDirectory: String
    public var logLevel: Logger.Level

    public init(
        databaseURL: DatabaseURL? = nil,
        host: String = "127.0.0.1",
        port: Int = 8080,
        stateDirectory: String = ".analyticspro",
        logLevel: Logger.Level = .info
    ) {
        self.databaseURL = databaseURL
        self.host = host
        self.port = port
        self.stateDirectory = stateDirectory
        self.logLevel = logLevel
    }

    /// Raw values as given by flags; `nil` falls back to the environment, then the default.
    public struct Overrides: Sendable {
        public var databaseURL: String?
        public var host: String?
        public var port: String?
        public var stateDirectory: String?
        public var logLevel: String?

        public init(
            databaseURL: String? = nil, host: String? = nil, port: String? = nil,
            stateDirectory: String? = nil, logLevel: String? = nil
        ) {
            self.databaseURL = databaseURL
            self.host = host
            self.port = port
            self.stateDirectory = stateDirectory
            self.logLevel = logLevel
        }
    }

    /// The settings, their environment variables and what they mean: the one list that
    /// help texts and the README table are written from.
    public enum Setting: String, CaseIterable, Sendable {
        case databaseURL = "DATABASE_URL"
        case host = "HOST"
        case port = "PORT"
        case stateDirectory = "STATE_DIR"
        case logLevel = "LOG_LEVEL"

        public var help: String {
            switch self {
            case .databaseURL: "PostgreSQL URL (postgres://user:pass@host:5432/db); unset: an embedded cluster under STATE_DIR"
            case .host: "address the HTTP server binds to (default 127.0.0.1)"
            case .port: "HTTP port, 1-65535 (default 8080)"
            case .stateDirectory: "folder for local state and the embedded PostgreSQL (default ./.analyticspro)"
            case .logLevel: "trace, debug, info, notice, warning, error or critical (default info)"
            }
        }
    }

    /// Reads the environment, applies flag overrides and validates every value.
    /// - Throws: `ConfigurationError` naming the first invalid setting.
    public static func resolve(
        environment: [String: String] = ProcessInfo.processInfo.environment,
        overrides: Overrides = .init()
    ) throws(ConfigurationError) -> AppConfiguration {
        func value(_ setting: Setting, _ override: String?) -> String? {
            if let override { return override }
            guard let raw = environment[setting.rawValue], !raw.isEmpty else { return nil }
            return raw
        }
        var config = AppConfiguration()

        if let raw = value(.databaseURL, overrides.databaseURL) {
            do {
                config.databaseURL = try DatabaseURL(parsing: raw)
            } catch {
                throw ConfigurationError(setting: .databaseURL, value: DatabaseURL.redacted(raw), reason: error.reason)
            }
        }
        if let raw = value(.host, overrides.host) {
            let trimmed = raw.trimmingCharacters(in: .whitespaces)
            guard !trimmed.isEmpty, !trimmed.contains(" ") else {
                throw ConfigurationError(setting: .host, value: raw, reason: "must be a host name or IP address")
            }
            config.host = trimmed
        }
        if let raw = value(.port, overrides.port) {
            guard let port = Int(raw), (1...65535).contains(port) else {
                throw ConfigurationError(setting: .port, value: raw, reason: "must be a whole number from 1 to 65535")
            }
            config.port = port
        }
        if let raw = value(.stateDirectory, overrides.stateDirectory) {
            guard !raw.trimmingCharacters(in: .whitespaces).isEmpty else {
                throw ConfigurationError(setting: .stateDirectory, value: raw, reason: "must be a folder path")
            }
            var isDirectory: ObjCBool = false
            if FileManager.default.fileExists(atPath: raw, isDirectory: &isDirectory), !isDirectory.boolValue {
                throw ConfigurationError(setting: .stateDirectory, value: raw, reason: "exists and is not a folder")
            }
            config.stateDirectory = raw
        }
        if let raw = value(.logLevel, overrides.logLevel) {
            guard let level = Logger.Level(rawValue: raw.lowercased()) else {
                throw ConfigurationError(
                    setting: .logLevel, value: raw,
                    reason: "must be one of trace, debug, info, notice, warning, error, critical")
            }
            config.logLevel = level
        }
        return config
    }
}

/// An invalid setting: one line that names it, the value and the rule it breaks.
public struct ConfigurationError: Error, CustomStringConvertible, Equatable {
    public let setting: AppConfiguration.Setting
    public let value: String
    public let reason: String

    public init(setting: AppConfiguration.Setting, value: String, reason: String) {
        self.setting = setting
        self.value = value
        self.reason = reason
    }

    public var description: String {
        "invalid \(setting.rawValue) '\(value)': \(reason)"
    }
}
