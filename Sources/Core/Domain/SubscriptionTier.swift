/// The seed's pricing tiers; each sets an organization's monthly event limit.
public enum SubscriptionTier: String, CaseIterable, Codable, Sendable {
    case starter
    case professional
    case enterprise
    case custom

    /// Events per month included in the tier; `custom` has no fixed limit of its own.
    public var defaultMonthlyEventLimit: Int64? {
        switch self {
        case .starter: 100_000
        case .professional: 1_000_000
        case .enterprise: 10_000_000
        case .custom: nil
        }
    }
}
