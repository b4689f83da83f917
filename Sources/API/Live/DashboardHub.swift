import Core
import Foundation
import Logging
import NIOConcurrencyHelpers
import NIOCore
import PostgresNIO
import ServiceLifecycle

/// Live dashboards on this API node: WebSocket subscribers per dashboard, and a LISTEN
/// on the rollup channel. When a rollup commits anywhere, every node hears which
/// organization's metrics changed, recomputes each affected dashboard once (not once
/// per subscriber) and hands the message to its subscribers.
///
/// Each subscriber has a one-message mailbox that keeps only the newest message: every
/// message carries the dashboard's full current values, so a slow client skips stale
/// states instead of slowing the hub or anyone else, and a dead one is dropped by its
/// own write timeout.
public final class DashboardHub: Service, Sendable {
    struct Subscriber {
        let continuation: AsyncStream<String>.Continuation
    }

    struct Dashboard {
        let orgID: UUID
        var subscribers: [Int: Subscriber] = [:]
        /// A refresh is running; `dirty` collects what changed meanwhile (nil metrics = all).
        var refreshing = false
        var dirty = false
        var dirtyMetrics: Set<UUID>? = []
    }

    struct State {
        var nextID = 0
        var dashboards: [UUID: Dashboard] = [:]
    }

    let client: PostgresClient
    let listenConfiguration: PostgresConnection.Configuration?
    let logger: Logger
    private let state = NIOLockedValueBox(State())

    public init(client: PostgresClient, listenConfiguration: PostgresConnection.Configuration?, logger: Logger) {
        self.client = client
        self.listenConfiguration = listenConfiguration
        self.logger = logger
    }

    /// Subscribers on this node (for tests and metrics).
    public var subscriberCount: Int {
        state.withLockedValue { $0.dashboards.values.reduce(0) { $0 + $1.subscribers.count } }
    }

    func subscribe(orgID: UUID, dashboardID: UUID) -> (Int, AsyncStream<String>) {
        let (stream, continuation) = AsyncStream<String>.makeStream(bufferingPolicy: .bufferingNewest(1))
        let id = state.withLockedValue { state -> Int in
            state.nextID += 1
            state.dashboards[dashboardID, default: Dashboard(orgID: orgID)].subscribers[state.nextID] = Subscriber(
                continuation: continuation)
            return state.nextID
        }
        return (id, stream)
    }

    func unsubscribe(dashboardID: UUID, id: Int) {
        let subscriber = state.withLockedValue { state -> Subscriber? in
            let removed = state.dashboards[dashboardID]?.subscribers.removeValue(forKey: id)
            if state.dashboards[dashboardID]?.subscribers.isEmpty == true, state.dashboards[dashboardID]?.refreshing == false {
                state.dashboards.removeValue(forKey: dashboardID)
            }
            return removed
        }
        subscriber?.continuation.finish()
    }

    /// A rollup committed for `orgID`; `metrics` nil means any of its metrics.
    func rollupsChanged(orgID: UUID, metrics: Set<UUID>?) {
        let start = state.withLockedValue { state -> [UUID] in
            var start: [UUID] = []
            for (id, dashboard) in state.dashboards where dashboard.orgID == orgID && !dashboard.subscribers.isEmpty {
                var dashboard = dashboard
                dashboard.dirty = true
                if let metrics, dashboard.dirtyMetrics != nil {
                    dashboard.dirtyMetrics!.formUnion(metrics)
                } else {
                    dashboard.dirtyMetrics = nil
                }
                if !dashboard.refreshing {
                    dashboard.refreshing = true
                    start.append(id)
                }
                state.dashboards[id] = dashboard
            }
            return start
        }
        for id in start {
            Task { await self.refreshLoop(dashboardID: id, orgID: orgID) }
        }
    }

    /// Recomputes until no change arrived during the last computation.
    func refreshLoop(dashboardID: UUID, orgID: UUID) async {
        while true {
            let metrics = state.withLockedValue { state -> Set<UUID>?? in
                guard var dashboard = state.dashboards[dashboardID] else { return .none }
                guard dashboard.dirty, !dashboard.subscribers.isEmpty else {
                    dashboard.refreshing = false
                    state.dashboards[dashboardID] = dashboard.subscribers.isEmpty ? nil : dashboard
                    return .none
                }
                let metrics = dashboard.dirtyMetrics
                dashboard.dirty = false
                dashboard.dirtyMetrics = []
                state.dashboards[dashboardID] = dashboard
                return .some(metrics)
            }
            guard case .some(let changed) = metrics else { return }
            do {
                let data = DashboardData(client: client)
                guard let dashboard = try await data.load(orgID: orgID, id: dashboardID, logger: logger) else {
                    // Deleted: tell subscribers and let them go.
                    broadcast(dashboardID: dashboardID, message: #"{"type":"deleted"}"#, finish: true)
                    continue
                }
                if let changed, changed.isDisjoint(with: dashboard.metricIDs) { continue }
                let message = try await Self.message(
                    type: "update", data: data, orgID: orgID, dashboard: dashboard, changed: changed, logger: logger)
                broadcast(dashboardID: dashboardID, message: message, finish: false)
            } catch {
                logger.warning(
                    "cannot refresh a live dashboard",
                    metadata: ["dashboard_id": "\(dashboardID)", "error": "\(String(reflecting: error))"])
                try? await Task.sleep(for: .milliseconds(500))
            }
        }
    }

    /// `{"type": "snapshot"|"update", "id", "name", "widgets": [...], "changed": [widget ids]}`.
    static func message(
        type: String, data: DashboardData, orgID: UUID, dashboard: DashboardData.Loaded, changed: Set<UUID>?,
        logger: Logger
    ) async throws -> String {
        let changedWidgets = dashboard.widgets.filter { changed == nil || changed!.contains($0.metricID) }.map(\.id)
        let bytes = try await data.json(
            orgID: orgID, dashboard: dashboard,
            leading: [
                ("type", .string(type)), ("changed", .array(changedWidgets.map(JSONValue.string))),
                ("sent_at", .string(Timestamps.format(Date()))),
            ], logger: logger)
        return String(decoding: bytes, as: UTF8.self)
    }

    func broadcast(dashboardID: UUID, message: String, finish: Bool) {
        let subscribers = state.withLockedValue { Array(($0.dashboards[dashboardID]?.subscribers ?? [:]).values) }
        for subscriber in subscribers {
            subscriber.continuation.yield(message)
            if finish { subscriber.continuation.finish() }
        }
    }

    // MARK: Service: the LISTEN connection, reconnected when it drops.

    public func run() async throws {
        guard let listenConfiguration else {
            try? await gracefulShutdown()
            return
        }
        await cancelWhenGracefulShutdown {
            var attempt = 0
            while !Task.isCancelled {
                do {
                    let connection = try await PostgresConnection.connect(
                        configuration: listenConfiguration, id: 1, logger: self.logger)
                    attempt = 0
                    // Whatever happened while disconnected: refresh every live dashboard.
                    self.refreshAll()
                    // Closed on every path: a connection released unclosed is a crash in
                    // debug builds (seen when the server failed to bind and cancelled us).
                    do {
                        try await withTaskCancellationHandler {
                            try await connection.listen(on: Rollups.notifyChannel) { notifications in
                                for try await notification in notifications {
                                    self.handle(payload: notification.payload)
                                }
                            }
                        } onCancel: {
                            let closing: EventLoopFuture<Void> = connection.close()
                            _ = closing
                        }
                    } catch {
                        try? await connection.close()
                        throw error
                    }
                    try? await connection.close()
                } catch {
                    if Task.isCancelled { return }
                    attempt += 1
                    self.logger.warning(
                        "rollup notifications lost; reconnecting", metadata: ["error": "\(String(reflecting: error))"])
                    try? await Task.sleep(for: .milliseconds(min(250 * attempt, 3000)))
                }
            }
        }
        // Shutting down: close every subscriber's stream so its socket ends.
        let all = state.withLockedValue { state -> [Subscriber] in
            state.dashboards.values.flatMap { Array($0.subscribers.values) }
        }
        for subscriber in all { subscriber.continuation.finish() }
    }

    func refreshAll() {
        let orgs = state.withLockedValue { Set($0.dashboards.values.map(\.orgID)) }
        for org in orgs { rollupsChanged(orgID: org, metrics: nil) }
    }

    /// Payload: `{"org": "…", "metrics": ["…"]}` (an empty list means any).
    func handle(payload: String) {
        guard case .object(let fields) = JSONValue.parse(text: payload), case .string(let orgText)? = fields["org"],
            let orgID = UUID(uuidString: orgText)
        else { return }
        var metrics: Set<UUID>?
        if case .array(let values)? = fields["metrics"], !values.isEmpty {
            metrics = Set(values.compactMap { value -> UUID? in
                if case .string(let text) = value { return UUID(uuidString: text) }
                return nil
            })
        }
        rollupsChanged(orgID: orgID, metrics: metrics)
    }
}
