import ServiceLifecycle

extension DatabaseSetup {
    /// The loop of a service that looks at the embedded cluster every so often: waits
    /// `pause`, looks, then waits the pause the look returns, until the service group
    /// shuts down. `state` carries what one look leaves for the next. Without an embedded
    /// cluster (`DATABASE_URL`) it only waits for the shutdown: a service that returned
    /// early would end the whole group.
    func lookAtEmbeddedCluster<State: Sendable>(
        every pause: Duration, state: State,
        _ look: @escaping @Sendable (EmbeddedPostgres, inout State) async -> Duration
    ) async {
        guard let cluster = embedded else {
            try? await gracefulShutdown()
            return
        }
        await cancelWhenGracefulShutdown {
            var state = state
            var pause = pause
            while !Task.isCancelled {
                try? await Task.sleep(for: pause)
                if Task.isCancelled { return }
                pause = await look(cluster, &state)
            }
        }
    }
}
