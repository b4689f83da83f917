import Core
import Foundation

/// Who is calling: an organization and what the credential may do.
public struct Principal: Sendable, Equatable {
    public let orgID: UUID
    public let keyID: UUID
    public let permissions: Set<APIKeyPermission>
    /// The organization's retention, read with the key (cached as long as the key is).
    public let retentionDays: Int

    public func require(_ permission: APIKeyPermission) throws {
        // admin implies read and write.
        guard permissions.contains(permission) || permissions.contains(.admin) else {
            throw AppError(.forbidden, "this API key lacks the '\(permission.rawValue)' permission")
        }
    }
}
