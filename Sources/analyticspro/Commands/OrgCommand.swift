import ArgumentParser
import Core
import Foundation
import Logging

struct OrgCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "org", abstract: "Manage organizations.", subcommands: [Create.self])

    struct Create: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Create an organization; prints {\"org_id\", \"api_key\"} as JSON. The key is shown only once.")

        @Argument(help: "The organization's name.")
        var name: String

        @Option(help: "starter (100K events/month), professional (1M), enterprise (10M) or custom.")
        var tier: String = "starter"

        @Option(name: .customLong("event-limit"), help: "Monthly event limit; required for --tier custom.")
        var eventLimit: Int64?

        @OptionGroup var options: GlobalOptions

        func run() async throws {
            let configuration = try options.resolve()
            guard let tier = SubscriptionTier(rawValue: tier.lowercased()) else {
                throw CLIFailure.usage("invalid --tier '\(tier)': must be starter, professional, enterprise or custom")
            }
            if tier == .custom, eventLimit == nil {
                throw CLIFailure.usage("--tier custom needs --event-limit N")
            }
            if let eventLimit, eventLimit < 0 {
                throw CLIFailure.usage("invalid --event-limit '\(eventLimit)': must be 0 or more")
            }
            let logger = Logger(label: "analyticspro.org")
            let session = try await DatabaseSession.open(configuration, logger: logger)
            defer { session.close() }
            let name = self.name, eventLimit = self.eventLimit
            let created: OrganizationStore.Created
            do {
                created = try await session.withClient { client in
                    try await OrganizationStore(client: client).create(
                        name: name, tier: tier, eventLimit: eventLimit, logger: logger)
                }
            } catch let error as AppError {
                throw CLIFailure.usage(error.message)
            }
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.sortedKeys]
            print(String(decoding: try encoder.encode(created), as: UTF8.self))
        }
    }
}
