import Foundation

/// An organization's white-label settings (`organizations.custom_branding`).
public struct Branding: Sendable, Equatable {
    public var companyName: String?
    public var primaryColor: RGBColor
    public var accentColor: RGBColor
    /// PNG bytes, already checked by `init(json:)`.
    public var logoPNG: [UInt8]?

    public static let neutral = Branding(
        companyName: nil, primaryColor: RGBColor(hex: "#1F2937")!, accentColor: RGBColor(hex: "#2563EB")!, logoPNG: nil)
    public static let maximumLogoBytes = 2 * 1024 * 1024

    public init(companyName: String?, primaryColor: RGBColor, accentColor: RGBColor, logoPNG: [UInt8]?) {
        self.companyName = companyName
        self.primaryColor = primaryColor
        self.accentColor = accentColor
        self.logoPNG = logoPNG
    }

    /// From `{"company_name", "primary_color", "accent_color", "logo_png_base64"}`;
    /// absent fields fall back to the neutral default, invalid ones are errors.
    public init(json: [String: Any]) throws(ReportError) {
        var branding = Branding.neutral
        if let name = json["company_name"] as? String, !name.isEmpty { branding.companyName = name }
        for (key, path) in [("primary_color", \Branding.primaryColor), ("accent_color", \Branding.accentColor)] {
            guard let value = json[key] else { continue }
            guard let text = value as? String, let color = RGBColor(hex: text) else {
                throw ReportError("branding \(key) must be a #RRGGBB color")
            }
            branding[keyPath: path] = color
        }
        if let encoded = json["logo_png_base64"] as? String {
            guard encoded.utf8.count <= Self.maximumLogoBytes * 4 / 3 + 4, let data = Data(base64Encoded: encoded) else {
                throw ReportError("branding logo must be base64 PNG data of at most \(Self.maximumLogoBytes / 1024 / 1024) MiB")
            }
            let bytes = [UInt8](data)
            try Self.checkLogo(bytes)
            branding.logoPNG = bytes
        }
        self = branding
    }

    static let pngSignature: [UInt8] = [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A]

    public static func checkLogo(_ bytes: [UInt8]) throws(ReportError) {
        guard bytes.count <= maximumLogoBytes else {
            throw ReportError("branding logo is \(bytes.count) bytes; at most \(maximumLogoBytes / 1024 / 1024) MiB")
        }
        guard bytes.starts(with: pngSignature) else { throw ReportError("branding logo is not a PNG image") }
    }
}

public struct RGBColor: Sendable, Equatable {
    public var red: Double
    public var green: Double
    public var blue: Double

    public init(red: Double, green: Double, blue: Double) {
        self.red = red
        self.green = green
        self.blue = blue
    }

    public init?(hex: String) {
        var text = Substring(hex)
        if text.hasPrefix("#") { text = text.dropFirst() }
        guard text.count == 6, let value = UInt32(text, radix: 16) else { return nil }
        self.init(
            red: Double((value >> 16) & 0xFF) / 255, green: Double((value >> 8) & 0xFF) / 255, blue: Double(value & 0xFF) / 255)
    }

    /// Mixed with white: `amount` 0 is the color, 1 is white.
    public func lightened(_ amount: Double) -> RGBColor {
        RGBColor(red: red + (1 - red) * amount, green: green + (1 - green) * amount, blue: blue + (1 - blue) * amount)
    }
}

public struct ReportError: Error, CustomStringConvertible, Equatable {
    public let message: String
    public init(_ message: String) { self.message = message }
    public var description: String { message }
}
