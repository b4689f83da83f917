import Core
import Foundation
import NIOConcurrencyHelpers
import Testing

@Suite struct DeadlineTests {
    @Test func returnsTheOperationsResultOrError() async throws {
        #expect(try await withDeadline(.seconds(5)) { 42 } == 42)
        struct Refused: Error {}
        await #expect(throws: Refused.self) { try await withDeadline(.seconds(5)) { () async throws -> Int in throw Refused() } }
    }

    /// An await that never returns and ignores cancellation — what a query lost on a
    /// closed connection looks like — ends in DeadlineExceeded, on time.
    @Test func givesUpOnAnAwaitThatNeverReturns() async throws {
        let parked = NIOLockedValueBox<[CheckedContinuation<Int, Never>]>([])
        let started = ContinuousClock.now
        await #expect(throws: DeadlineExceeded.self) {
            try await withDeadline(.milliseconds(200)) {
                await withCheckedContinuation { continuation in parked.withLockedValue { $0.append(continuation) } }
            }
        }
        let waited = ContinuousClock.now - started
        #expect(waited >= .milliseconds(200) && waited < .seconds(5))
        // Let the abandoned operation end, so the test leaves nothing suspended.
        for continuation in parked.withLockedValue({ $0 }) { continuation.resume(returning: 0) }
    }

    /// A caller that is cancelled (a service group stopping) stops waiting at once, even
    /// for an operation that ignores cancellation.
    @Test func returnsWhenTheCallerIsCancelled() async throws {
        let parked = NIOLockedValueBox<[CheckedContinuation<Int, Never>]>([])
        let started = ContinuousClock.now
        let caller = Task {
            try await withDeadline(.seconds(60)) {
                await withCheckedContinuation { continuation in parked.withLockedValue { $0.append(continuation) } }
            }
        }
        while parked.withLockedValue({ $0.isEmpty }) { try await Task.sleep(for: .milliseconds(10)) }
        caller.cancel()
        await #expect(throws: CancellationError.self) { try await caller.value }
        #expect(ContinuousClock.now - started < .seconds(5))
        for continuation in parked.withLockedValue({ $0 }) { continuation.resume(returning: 0) }
    }
}
