import NIOConcurrencyHelpers

/// Wakes waiting loops: "there may be work", or, latched, "stop".
///
/// A signal sent while nobody waits is remembered, so a wake-up between a check and a
/// wait is never lost. A latching signal stays set: every later wait returns at once.
final class WakeupSignal: Sendable {
    private struct State {
        var pending = false
        var waiters: [CheckedContinuation<Void, Never>] = []
    }

    private let state = NIOLockedValueBox(State())
    private let latching: Bool

    init(latching: Bool = false) {
        self.latching = latching
    }

    /// For latching signals: whether it was ever signalled.
    var isSet: Bool { state.withLockedValue { $0.pending } }

    /// Wakes every current waiter, or the next one to wait.
    func signal() {
        let waiters = state.withLockedValue { state -> [CheckedContinuation<Void, Never>] in
            let waiters = state.waiters
            state.waiters.removeAll()
            if waiters.isEmpty || latching { state.pending = true }
            return waiters
        }
        for waiter in waiters { waiter.resume() }
    }

    /// Returns on the next signal, or after `timeout` (the polling fallback).
    func wait(timeout: Duration) async {
        if state.withLockedValue({ state in
            guard state.pending else { return false }
            if !latching { state.pending = false }
            return true
        }) {
            return
        }
        let timer = Task { [weak self] in
            try? await Task.sleep(for: timeout)
            if !Task.isCancelled { self?.wakeWaitersOnly() }
        }
        defer { timer.cancel() }
        await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
            let resumeNow = state.withLockedValue { state -> Bool in
                if state.pending {
                    if !latching { state.pending = false }
                    return true
                }
                state.waiters.append(continuation)
                return false
            }
            if resumeNow { continuation.resume() }
        }
    }

    /// A timeout wakes whoever waits without leaving a pending signal behind.
    private func wakeWaitersOnly() {
        let waiters = state.withLockedValue { state -> [CheckedContinuation<Void, Never>] in
            let waiters = state.waiters
            state.waiters.removeAll()
            return waiters
        }
        for waiter in waiters { waiter.resume() }
    }
}
