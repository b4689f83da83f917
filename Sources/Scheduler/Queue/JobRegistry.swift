import Foundation

/// The job kinds a worker can run, each with its decoder.
public struct JobRegistry: Sendable {
    typealias Runner = @Sendable (_ arguments: [UInt8], _ context: JobContext) async throws -> JobOutcome

    struct Entry: Sendable {
        let run: Runner
        let timeout: Duration?
    }

    private(set) var entries: [String: Entry] = [:]

    public init() {}

    /// Registers `definition` under its kind; a later registration of the same kind wins.
    public mutating func register<J: JobDefinition>(_ definition: J) {
        entries[J.kind] = Entry(
            run: { bytes, context in
                let arguments: J.Arguments
                do {
                    arguments = try JSONDecoder().decode(J.Arguments.self, from: Data(bytes))
                } catch {
                    return .discard(reason: "arguments do not decode as \(J.Arguments.self): \(error)")
                }
                return try await definition.run(arguments, context: context)
            },
            timeout: J.defaultTimeout)
    }

    public var kinds: [String] { entries.keys.sorted() }

    /// The time allowed per attempt of `kind`, when its definition declares one.
    public func timeout(for kind: String) -> Duration? { entries[kind]?.timeout }

    func entry(for kind: String) -> Entry? { entries[kind] }
}
