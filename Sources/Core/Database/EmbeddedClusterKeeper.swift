import Logging
import ServiceLifecycle

/// Keeps the embedded cluster running while this process uses it.
///
/// Several processes may share one state folder (`serve` in one terminal, `worker` in
/// another); the one that started the cluster stops it when it exits. The others used
/// to lose their database for good then: every request 503, every claim failing, until
/// restarted by hand. Each looks every few seconds and starts the cluster again when no
/// server holds it (stopped by its starter, or killed); the one that does owns it from
/// then on and stops it on exit. The start lock lets one process win when several look
/// at once. Without an embedded cluster (`DATABASE_URL`) it does nothing.
public struct EmbeddedClusterKeeper: Service {
    let setup: DatabaseSetup
    let interval: Duration
    let logger: Logger

    public init(setup: DatabaseSetup, interval: Duration = .seconds(2), logger: Logger) {
        self.setup = setup
        self.interval = interval
        self.logger = logger
    }

    public func run() async throws {
        await setup.lookAtEmbeddedCluster(every: interval, state: ()) { cluster, _ in
            await keep(cluster)
            return interval
        }
    }

    /// One look: starts the cluster when no live server holds it.
    func keep(_ cluster: EmbeddedPostgres) async {
        if cluster.postmasterIsAlive() { return }
        logger.warning("embedded PostgreSQL is not running (stopped by the process that started it, or killed): starting it")
        do {
            if try await cluster.startAsync(logger: logger) {
                setup.ownership.started(pid: cluster.postmasterPID())
                logger.notice("embedded PostgreSQL started again; this process stops it on exit")
            }
        } catch {
            logger.warning("cannot start embedded PostgreSQL; trying again", metadata: ["error": "\(error)"])
        }
    }
}
