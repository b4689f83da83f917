@testable import API
import Core
import Foundation
import Hummingbird
import HummingbirdTesting
import Logging
import PostgresNIO
import TestSupport
import Testing

@Suite struct HealthRoutesTests {
    @Test func healthAndReadinessOnAMigratedDatabase() async throws {
        try await withTestDatabase { client, _ in
            let app = Application(router: APIServer.makeRouter(.init(client: client)))
            try await app.test(.router) { http in
                try await http.execute(uri: "/healthz", method: .get) { response in
                    #expect(response.status == .ok)
                }
                try await http.execute(uri: "/readyz", method: .get) { response in
                    #expect(response.status == .ok)
                    #expect(String(buffer: response.body).contains("ready"))
                }
            }
        }
    }

    @Test func notReadyBeforeMigrations() async throws {
        try await withTestDatabase(migrated: false) { client, _ in
            let app = Application(router: APIServer.makeRouter(.init(client: client)))
            try await app.test(.router) { http in
                try await http.execute(uri: "/readyz", method: .get) { response in
                    #expect(response.status == .serviceUnavailable)
                    #expect(String(buffer: response.body).contains("migrations pending"))
                }
            }
        }
    }

    @Test func unknownRoutesGetTheJSONErrorFormat() async throws {
        try await withTestDatabase { client, _ in
            let app = Application(router: APIServer.makeRouter(.init(client: client)))
            try await app.test(.router) { http in
                try await http.execute(uri: "/api/does-not-exist", method: .get) { response in
                    #expect(response.status == .notFound)
                    #expect(response.headers[.contentType]?.hasPrefix("application/json") == true)
                    let body = try JSONSerialization.jsonObject(with: Data(buffer: response.body)) as? [String: Any]
                    let error = body?["error"] as? [String: String]
                    #expect(error?["code"] == "not_found")
                    #expect(error?["message"]?.isEmpty == false)
                }
            }
        }
    }

    @Test func requestIDIsEchoedOrGenerated() async throws {
        try await withTestDatabase { client, _ in
            let app = Application(router: APIServer.makeRouter(.init(client: client)))
            try await app.test(.router) { http in
                try await http.execute(uri: "/healthz", method: .get, headers: [.requestID: "abc-123"]) { response in
                    #expect(response.headers[.requestID] == "abc-123")
                }
                try await http.execute(uri: "/healthz", method: .get, headers: [.requestID: "bad id\twith junk"]) { response in
                    let id = response.headers[.requestID]
                    #expect(id != nil && id != "bad id\twith junk")
                }
                try await http.execute(uri: "/nowhere", method: .get) { response in
                    #expect(response.headers[.requestID]?.isEmpty == false)
                }
            }
        }
    }

    @Test func servesTheOpenAPIDocumentDescribingItsRoutes() async throws {
        try await withTestDatabase { client, _ in
            let app = Application(router: APIServer.makeRouter(.init(client: client)))
            try await app.test(.router) { http in
                try await http.execute(uri: "/api/openapi.yaml", method: .get) { response in
                    #expect(response.status == .ok)
                    let text = String(buffer: response.body)
                    #expect(text.hasPrefix("openapi: 3.1"))
                    for path in ["/healthz:", "/readyz:", "/api/openapi.yaml:", "/api/events:", "/api/events/batch:", "/api/events/stats:", "/api/events/export:", "/api/keys:", "/api/keys/{id}:", "/api/metrics:", "/api/metrics/{id}:", "/api/analytics/metrics:", "/api/dashboards:", "/api/dashboards/{id}:", "/api/dashboards/{id}/data:", "/ws/dashboard/{id}:", "/api/exports:", "/api/exports/{id}:", "/api/exports/{id}/download:"] {
                        #expect(text.contains("  \(path)"), "missing \(path)")
                    }
                }
            }
        }
    }

    /// The database goes away and comes back: readiness follows within seconds.
    @Test func readinessFollowsTheDatabase() async throws {
        let state = "/tmp/aptest-ready-\(UUID().uuidString.prefix(8))"
        defer { try? FileManager.default.removeItem(atPath: state) }
        let logger = Logger(label: "test.ready")
        let cluster = try EmbeddedPostgres(stateDirectory: state, settings: ["fsync": "off"])
        defer { cluster.kill() }
        try await cluster.startAsync(logger: logger)
        try await cluster.databaseURL.withConnection(logger: logger) { connection in
            try await Migrator().migrate(on: connection, logger: logger)
        }
        var configuration = cluster.databaseURL.clientConfiguration
        configuration.options.connectTimeout = .seconds(1)
        let client = PostgresClient(configuration: configuration, backgroundLogger: logger)
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { await client.run() }
            defer { group.cancelAll() }
            let app = Application(router: APIServer.makeRouter(.init(client: client)))
            try await app.test(.router) { http in
                func status() async throws -> HTTPResponse.Status {
                    try await http.execute(uri: "/readyz", method: .get) { $0.status }
                }
                func waitFor(_ expected: HTTPResponse.Status) async throws -> HTTPResponse.Status {
                    var last = try await status()
                    for _ in 0..<40 where last != expected {
                        try await Task.sleep(for: .milliseconds(250))
                        last = try await status()
                    }
                    return last
                }
                #expect(try await waitFor(.ok) == .ok)
                await cluster.killAsync()
                #expect(try await waitFor(.serviceUnavailable) == .serviceUnavailable)
                try await cluster.startAsync(logger: logger)
                #expect(try await waitFor(.ok) == .ok)
            }
        }
    }
}
