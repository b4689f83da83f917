import Jobs
import PostgresNIO
import Scheduler
import Testing

@Suite struct JobCatalogTests {
    /// A handler whose query postgres-nio loses (a connection that closed under it) never
    /// returns; only a timeout gives its worker slot back and lets the job run again. So
    /// every platform job declares one — the diagnostic jobs, run by hand, excepted.
    @Test func everyPlatformJobHasATimeout() {
        let client = PostgresClient(
            configuration: .init(unixSocketPath: "/nonexistent/.s.PGSQL.5432", username: "x", password: nil, database: "x"))
        let registry = JobCatalog.registry(client: client)
        let diagnostic: Set<String> = [NoopJob.kind, SleepJob.kind]
        #expect(registry.kinds.count > diagnostic.count)
        for kind in registry.kinds where !diagnostic.contains(kind) {
            #expect(registry.timeout(for: kind) != nil, "\(kind) has no timeout")
        }
    }
}
