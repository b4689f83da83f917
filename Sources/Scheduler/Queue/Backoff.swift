/// Delay before a failed job runs again: grows with the fourth power of the attempt
/// (as Oban and River do), starts at 15 s, caps at a day, with ±10% jitter so a burst
/// of failures does not come back as a burst.
public enum Backoff {
    public static func delay(afterAttempt attempt: Int, jitter: Double = Double.random(in: -0.1...0.1)) -> Duration {
        let base = 15.0 + pow4(Double(max(attempt, 1)))
        let capped = min(base, 86_400)
        return .milliseconds(Int64((capped * (1 + jitter)) * 1000))
    }

    static func pow4(_ x: Double) -> Double { x * x * x * x }
}
