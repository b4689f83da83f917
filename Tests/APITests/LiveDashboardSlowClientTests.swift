@testable import API
import Core
import Foundation
import Hummingbird
import HummingbirdTesting
import Logging
import NIOCore
import PostgresNIO
import TestSupport
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// A client that stops reading is dropped after the write timeout; the others keep
/// receiving every push meanwhile.
@Suite struct LiveDashboardSlowClientTests {
    static let logger = Logger(label: "test.live")

    /// Opens a WebSocket by hand with a tiny receive buffer, then never reads again.
    static func stalledSocket(port: Int, path: String) throws -> Int32 {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        var size: Int32 = 2048
        setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &size, socklen_t(MemoryLayout<Int32>.size))
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        address.sin_port = UInt16(port).bigEndian
        let connected = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard connected == 0 else { throw POSIXError(.ECONNREFUSED) }
        let request = """
            GET \(path) HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
            Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n
            """
        _ = request.withCString { send(fd, $0, strlen($0), 0) }
        // Just the response head (the 101); the snapshot after it is left unread.
        var head: [UInt8] = []
        var byte: UInt8 = 0
        while !head.suffix(4).elementsEqual([13, 10, 13, 10]), recv(fd, &byte, 1, 0) == 1 { head.append(byte) }
        guard String(decoding: head, as: UTF8.self).hasPrefix("HTTP/1.1 101") else { throw POSIXError(.EPROTO) }
        return fd
    }

    @Test func stalledClientIsDroppedWithoutDelayingOthers() async throws {
        try await withTestDatabase { client, url in
            let fixture = try await IngestionFixture.make(client)
            var dependencies = APIServer.Dependencies(client: client, listenConfiguration: url.connectionConfiguration)
            dependencies.webSocketWriteTimeout = .seconds(1)
            let hub = dependencies.hub
            let app = APIServer.makeApplication(dependencies, host: "127.0.0.1", port: 0, logger: Self.logger)
            try await app.test(.live) { http in
                let port = try #require(http.port)
                let (_, metric) = try await send(
                    http, .post, "/api/metrics", key: fixture.adminKey,
                    json: #"{"name": "Taps", "event_name": "tap", "aggregation": "count"}"#)
                let metricID = try #require(metric["id"] as? String)
                // Six widgets of 8,640 minute points: each message is about 2 MB.
                let range = #"{"start": "2026-11-01T00:00:00Z", "end": "2026-11-07T00:00:00Z"}"#
                let widgets = (0..<6).map {
                    #"{"id": "w\#($0)", "metric_id": "\#(metricID)", "chart": "line", "range": \#(range), "granularity": "minute"}"#
                }
                let (_, dashboard) = try await send(
                    http, .post, "/api/dashboards", key: fixture.adminKey,
                    json: #"{"name": "Big", "config": {"widgets": [\#(widgets.joined(separator: ","))]}}"#)
                let id = try #require(dashboard["id"] as? String)
                let path = "/ws/dashboard/\(id)?token=\(fixture.adminKey)"

                let stalled = try Self.stalledSocket(port: port, path: path)
                defer { close(stalled) }
                let reader = LiveSocket(url: "ws://127.0.0.1:\(port)\(path)")
                defer { reader.close() }
                #expect(try await reader.next(timeout: .seconds(20))["type"] as? String == "snapshot")
                for _ in 0..<200 where hub.subscriberCount < 2 { try await Task.sleep(for: .milliseconds(20)) }
                #expect(hub.subscriberCount == 2)

                // Pushes keep reaching the reading client while the stalled one's writes block.
                let orgID = fixture.orgID
                for round in 0..<8 {
                    hub.rollupsChanged(orgID: orgID, metrics: nil)
                    let started = ContinuousClock.now
                    let update = try await reader.next(timeout: .seconds(10))
                    #expect(update["type"] as? String == "update", "round \(round)")
                    #expect(ContinuousClock.now - started < .seconds(5), "round \(round)")
                }
                // The stalled client was dropped by its write timeout.
                for _ in 0..<500 where hub.subscriberCount > 1 { try await Task.sleep(for: .milliseconds(20)) }
                #expect(hub.subscriberCount == 1)
            }
        }
    }
}
