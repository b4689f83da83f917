import Crypto
import Foundation

/// An API key's secret and what is stored of it.
///
/// Keys are 32 random bytes, so a plain SHA-256 is enough to make the stored hash
/// useless to a thief (no dictionary to try) while keeping the lookup one index probe.
public struct APIKeySecret: Sendable {
    /// Every key starts with this, so leaked keys are easy to recognise and scan for.
    public static let prefix = "ap_"
    public let plaintext: String

    public init(plaintext: String) {
        self.plaintext = plaintext
    }

    /// A new random key.
    public static func generate() -> APIKeySecret {
        var generator = SystemRandomNumberGenerator()
        let bytes = (0..<32).map { _ in UInt8.random(in: .min ... .max, using: &generator) }
        return APIKeySecret(plaintext: prefix + Self.base62(bytes))
    }

    /// Hex SHA-256 of the key: the only form that is stored.
    public var hash: String { Self.hash(plaintext) }

    /// The first characters, shown in key listings so users can tell keys apart.
    public var displayPrefix: String { String(plaintext.prefix(10)) }

    public static func hash(_ plaintext: String) -> String {
        Hex.encode(SHA256.hash(data: Data(plaintext.utf8)))
    }

    static func base62(_ bytes: [UInt8]) -> String {
        let alphabet = Array("0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz")
        // Base conversion of a 256-bit number, most significant digit first.
        var digits = bytes
        var output: [Character] = []
        while digits.contains(where: { $0 != 0 }) {
            var remainder = 0
            var next: [UInt8] = []
            for byte in digits {
                let accumulator = remainder * 256 + Int(byte)
                let quotient = accumulator / 62
                remainder = accumulator % 62
                if !next.isEmpty || quotient != 0 { next.append(UInt8(quotient)) }
            }
            output.append(alphabet[remainder])
            digits = next
        }
        return String(output.reversed())
    }
}

/// What an API key may do.
public enum APIKeyPermission: String, CaseIterable, Codable, Sendable {
    case read
    case write
    case admin
}
