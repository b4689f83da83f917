import Core
import Testing

@Suite struct ConfigurationTests {
    @Test func defaultsWithEmptyEnvironment() throws {
        let config = try AppConfiguration.resolve(environment: [:])
        #expect(config.databaseURL == nil)
        #expect(config.host == "127.0.0.1")
        #expect(config.port == 8080)
        #expect(config.stateDirectory == ".analyticspro")
        #expect(config.logLevel == .info)
    }

    @Test func environmentIsReadAndFlagsWin() throws {
        let env = [
            "DATABASE_URL": "postgres://app:s3cret@db.internal:6543/analytics",
            "HOST": "0.0.0.0", "PORT": "9000", "STATE_DIR": "/tmp/ap-state", "LOG_LEVEL": "DEBUG",
        ]
        let config = try AppConfiguration.resolve(environment: env, overrides: .init(port: "9100", logLevel: "error"))
        #expect(config.databaseURL?.endpoint == .tcp(host: "db.internal", port: 6543))
        #expect(config.databaseURL?.username == "app")
        #expect(config.databaseURL?.password == "s3cret")
        #expect(config.databaseURL?.database == "analytics")
        #expect(config.host == "0.0.0.0")
        #expect(config.port == 9100)
        #expect(config.stateDirectory == "/tmp/ap-state")
        #expect(config.logLevel == .error)
    }

    @Test(arguments: [
        ("PORT", "abc"), ("PORT", "0"), ("PORT", "70000"), ("LOG_LEVEL", "loud"),
        ("DATABASE_URL", "mysql://x@y/z"), ("DATABASE_URL", "postgres://host-without-user/db"),
        ("DATABASE_URL", "not a url"), ("HOST", "two words"), ("STATE_DIR", "/etc/passwd"),
    ])
    func invalidValuesNameTheSetting(setting: String, value: String) {
        #expect {
            _ = try AppConfiguration.resolve(environment: [setting: value])
        } throws: { error in
            guard let error = error as? ConfigurationError else { return false }
            return error.setting.rawValue == setting && error.description.hasPrefix("invalid \(setting) ")
                && !error.description.contains("\n")
        }
    }

    @Test func passwordsAreRedactedInErrors() {
        #expect {
            _ = try AppConfiguration.resolve(environment: ["DATABASE_URL": "postgres://u:hunter2@h/db?sslmode=verify-full"])
        } throws: { error in
            "\(error)".contains("sslmode") && !"\(error)".contains("hunter2")
        }
    }

    @Test func unixSocketURL() throws {
        let url = try DatabaseURL(parsing: "postgresql://me@localhost/app?host=/var/run/postgresql")
        #expect(url.endpoint == .unixSocket(path: "/var/run/postgresql/.s.PGSQL.5432"))
        #expect(url.database == "app")
    }
}
