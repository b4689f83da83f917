import Foundation
import PostgresNIO

/// A parsed `postgres://` URL.
///
/// Accepts the libpq forms operators already use: `postgres://user:pass@host:port/db`,
/// `postgresql://…`, and a Unix socket folder as `?host=/var/run/postgresql`.
public struct DatabaseURL: Sendable, Equatable {
    public enum Endpoint: Sendable, Equatable {
        case tcp(host: String, port: Int)
        case unixSocket(path: String)
    }

    public var endpoint: Endpoint
    public var username: String
    public var password: String?
    public var database: String

    public init(endpoint: Endpoint, username: String, password: String?, database: String) {
        self.endpoint = endpoint
        self.username = username
        self.password = password
        self.database = database
    }

    public struct ParseError: Error, Sendable {
        public let reason: String
    }

    public init(parsing raw: String) throws(ParseError) {
        guard let components = URLComponents(string: raw), let scheme = components.scheme else {
            throw ParseError(reason: "not a URL; expected postgres://user:password@host:5432/database")
        }
        guard scheme == "postgres" || scheme == "postgresql" else {
            throw ParseError(reason: "scheme must be postgres:// or postgresql://")
        }
        let query = Dictionary(
            (components.queryItems ?? []).map { ($0.name, $0.value ?? "") }, uniquingKeysWith: { _, last in last })
        let port: Int
        if let explicit = components.port {
            guard (1...65535).contains(explicit) else { throw ParseError(reason: "port must be from 1 to 65535") }
            port = explicit
        } else {
            port = 5432
        }
        if let socketFolder = query["host"], socketFolder.hasPrefix("/") {
            self.endpoint = .unixSocket(path: "\(socketFolder)/.s.PGSQL.\(port)")
        } else {
            guard let host = components.host, !host.isEmpty else {
                throw ParseError(reason: "missing host")
            }
            self.endpoint = .tcp(host: host, port: port)
        }
        guard let user = components.user, !user.isEmpty else {
            throw ParseError(reason: "missing user name")
        }
        self.username = user.removingPercentEncoding ?? user
        self.password = components.password.map { $0.removingPercentEncoding ?? $0 }
        let path = components.path.hasPrefix("/") ? String(components.path.dropFirst()) : components.path
        self.database = path.isEmpty ? self.username : (path.removingPercentEncoding ?? path)
        if let mode = query["sslmode"], !["disable", "allow", "prefer"].contains(mode) {
            throw ParseError(reason: "sslmode=\(mode) is not supported; use a local or tunnelled connection")
        }
    }

    /// The URL with its password replaced, for messages and logs.
    public static func redacted(_ raw: String) -> String {
        guard var components = URLComponents(string: raw), components.password != nil else { return raw }
        components.password = "****"
        return components.string ?? "<unparseable>"
    }

    /// A client configuration for this database.
    public var clientConfiguration: PostgresClient.Configuration {
        var configuration =
            switch endpoint {
            case .tcp(let host, let port):
                PostgresClient.Configuration(
                    host: host, port: port, username: username, password: password, database: database, tls: .disable)
            case .unixSocket(let path):
                PostgresClient.Configuration(
                    unixSocketPath: path, username: username, password: password, database: database)
            }
        // JIT compiles any query whose estimated cost passes a threshold: rollup folds and
        // dashboard reads over large tables passed it and paid 50-100 ms of compilation
        // for queries that run in a few milliseconds.
        configuration.options.additionalStartupParameters = [("jit", "off")]
        return configuration
    }

    /// A single-connection configuration (migrations, LISTEN).
    public var connectionConfiguration: PostgresConnection.Configuration {
        switch endpoint {
        case .tcp(let host, let port):
            PostgresConnection.Configuration(
                host: host, port: port, username: username, password: password, database: database, tls: .disable)
        case .unixSocket(let path):
            PostgresConnection.Configuration(
                unixSocketPath: path, username: username, password: password, database: database)
        }
    }

    /// The same server, another database.
    public func with(database: String) -> DatabaseURL {
        var copy = self
        copy.database = database
        return copy
    }
}
