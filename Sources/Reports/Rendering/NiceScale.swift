import Foundation

/// Axis ticks at "nice" values (1, 2, 2.5, 5 × 10ⁿ) covering a data range.
struct NiceScale: Equatable {
    let minimum: Double
    let maximum: Double
    let step: Double

    init(lower: Double, upper: Double, maximumTicks: Int = 6) {
        var lower = lower.isFinite ? lower : 0
        var upper = upper.isFinite ? upper : 1
        if lower > upper { swap(&lower, &upper) }
        if lower == upper {
            // A flat series still gets an axis around its value.
            let pad = lower == 0 ? 1 : abs(lower) * 0.5
            lower -= lower >= 0 && lower - pad < 0 ? lower : pad
            upper += pad
        }
        let step = Self.niceStep((upper - lower) / Double(max(1, maximumTicks - 1)))
        self.step = step
        self.minimum = (lower / step).rounded(.down) * step
        self.maximum = (upper / step).rounded(.up) * step
    }

    static func niceStep(_ raw: Double) -> Double {
        guard raw > 0, raw.isFinite else { return 1 }
        let magnitude = pow(10, (log10(raw)).rounded(.down))
        let fraction = raw / magnitude
        let nice: Double = fraction <= 1 ? 1 : fraction <= 2 ? 2 : fraction <= 2.5 ? 2.5 : fraction <= 5 ? 5 : 10
        return nice * magnitude
    }

    var ticks: [Double] {
        guard step > 0 else { return [minimum] }
        let count = Int(((maximum - minimum) / step).rounded()) + 1
        return (0..<min(count, 50)).map { minimum + Double($0) * step }
    }
}
