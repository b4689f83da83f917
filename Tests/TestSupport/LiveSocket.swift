import Foundation
import HTTPTypes
import HummingbirdWSClient
import Logging
import NIOConcurrencyHelpers

/// A WebSocket client for tests: connects in the background and queues each text
/// message; `next` takes them in order, as parsed JSON, with a timeout.
public final class LiveSocket: Sendable {
    public enum Failure: Error { case timeout, closed(String) }

    private struct State {
        var queue: [String] = []
        var ended: String?
    }

    private let state = NIOLockedValueBox(State())
    private let task: Task<Void, Never>

    public init(url: String, headers: HTTPFields = [:]) {
        let state = self.state
        let configuration = WebSocketClientConfiguration(maxFrameSize: 1 << 24, additionalHeaders: headers)
        task = Task {
            do {
                try await WebSocketClient.connect(url: url, configuration: configuration, logger: Logger(label: "test.ws")) {
                    inbound, _, _ in
                    for try await message in inbound.messages(maxSize: 1 << 24) {
                        if case .text(let text) = message { state.withLockedValue { $0.queue.append(text) } }
                    }
                }
                state.withLockedValue { $0.ended = "closed" }
            } catch {
                state.withLockedValue { $0.ended = "\(error)" }
            }
        }
    }

    /// How the connection ended (nil while open).
    public var ended: String? { state.withLockedValue { $0.ended } }

    /// The next message, or `Failure.timeout` / `.closed`.
    public func next(timeout: Duration = .seconds(10)) async throws -> [String: Any] {
        let deadline = ContinuousClock.now + timeout
        while ContinuousClock.now < deadline {
            let (text, ended) = state.withLockedValue { state -> (String?, String?) in
                state.queue.isEmpty ? (nil, state.ended) : (state.queue.removeFirst(), nil)
            }
            if let text {
                return (try JSONSerialization.jsonObject(with: Data(text.utf8)) as? [String: Any]) ?? [:]
            }
            if let ended { throw Failure.closed(ended) }
            try await Task.sleep(for: .milliseconds(2))
        }
        throw Failure.timeout
    }

    /// Waits for a message matching `predicate`, skipping others.
    public func next(timeout: Duration = .seconds(10), where predicate: ([String: Any]) -> Bool) async throws -> [String: Any] {
        let deadline = ContinuousClock.now + timeout
        while true {
            let remaining = deadline - ContinuousClock.now
            guard remaining > .zero else { throw Failure.timeout }
            let message = try await next(timeout: remaining)
            if predicate(message) { return message }
        }
    }

    /// Waits until the connection ends; returns how.
    public func waitForEnd(timeout: Duration = .seconds(10)) async -> String? {
        let deadline = ContinuousClock.now + timeout
        while ContinuousClock.now < deadline {
            if let ended { return ended }
            try? await Task.sleep(for: .milliseconds(5))
        }
        return nil
    }

    public func close() {
        task.cancel()
    }
}
