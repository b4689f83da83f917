import Core
import Foundation
import Hummingbird
import Logging
import PostgresNIO
import Scheduler

/// `POST/GET/PUT/DELETE /api/metrics`: custom metric definitions (admin to write, read to
/// list). Writing a definition starts its backfill; built-in metrics are read-only.
struct MetricRoutes: Sendable {
    let client: PostgresClient
    static let maximumMetrics = 500
    static let maximumFilters = 20

    func register(on group: RouterGroup<APIRequestContext>) {
        group.post("metrics", use: create)
        group.get("metrics", use: list)
        group.get("metrics/:id", use: show)
        group.put("metrics/:id", use: update)
        group.delete("metrics/:id", use: delete)
    }

    /// A validated request body.
    struct Definition: Equatable {
        var name: String
        var eventName: String
        var aggregation: Aggregation
        var property: String?
        var filters: JSONValue
        var groupBy: String?

        /// Whether the rollups must be recomputed when this replaces `other`.
        func changesRollups(from other: Definition) -> Bool {
            eventName != other.eventName || aggregation != other.aggregation || property != other.property
                || filters != other.filters || groupBy != other.groupBy
        }
    }

    struct MetricInfo: Encodable {
        let id: String
        let name: String
        let event_name: String
        let aggregation: String
        let property: String?
        let filters: JSONValue
        let group_by: String?
        let builtin: String?
        let backfill_done: Bool
        let created_at: Date
        let updated_at: Date
    }

    static func parse(_ body: JSONValue) throws -> Definition {
        guard case .object(let fields) = body else { throw AppError(.invalidJSON, "request body must be a JSON object") }
        func text(_ key: String, required: Bool) throws -> String? {
            switch fields[key] {
            case nil, .null?:
                if required { throw AppError(.invalidField, "'\(key)' is required") }
                return nil
            case .string(let value)?:
                guard (1...255).contains(value.count), !value.utf8.contains(0) else {
                    throw AppError(.invalidField, "'\(key)' must be 1 to 255 characters")
                }
                return value
            default:
                throw AppError(.invalidField, "'\(key)' must be a string")
            }
        }
        let name = try text("name", required: true)!
        let eventName = try text("event_name", required: true)!
        guard let aggregationName = try text("aggregation", required: true),
            let aggregation = Aggregation(rawValue: aggregationName), Aggregation.userDefinable.contains(aggregation)
        else {
            throw AppError(
                .invalidField,
                "'aggregation' must be one of \(Aggregation.userDefinable.map(\.rawValue).joined(separator: ", "))")
        }
        let property = try text("property", required: aggregation.needsProperty)
        let groupBy = try text("group_by", required: false)
        if groupBy?.hasPrefix("$") == true {
            throw AppError(.invalidField, "'group_by' must name an event property")
        }
        var filters: [JSONValue] = []
        switch fields["filters"] {
        case nil, .null?: break
        case .array(let values)?:
            guard values.count <= maximumFilters else {
                throw AppError(.invalidField, "at most \(maximumFilters) filters")
            }
            for (index, value) in values.enumerated() {
                filters.append(try parseFilter(value, index: index))
            }
        default:
            throw AppError(.invalidField, "'filters' must be an array")
        }
        return Definition(
            name: name, eventName: eventName, aggregation: aggregation,
            property: aggregation.needsProperty ? property : nil, filters: .array(filters), groupBy: groupBy)
    }

    static func parseFilter(_ value: JSONValue, index: Int) throws -> JSONValue {
        guard case .object(let filter) = value else {
            throw AppError(.invalidField, "filters[\(index)] must be an object")
        }
        guard case .string(let property)? = filter["property"], (1...255).contains(property.count),
            !property.utf8.contains(0)
        else {
            throw AppError(.invalidField, "filters[\(index)].property must be a string of 1 to 255 characters")
        }
        guard case .string(let op)? = filter["op"] else {
            throw AppError(.invalidField, "filters[\(index)].op must be \"eq\", \"in\" or \"exists\"")
        }
        switch op {
        case "eq":
            guard let operand = filter["value"], operand.depth <= 1, !operand.containsNUL else {
                throw AppError(.invalidField, "filters[\(index)].value must be a string, number, boolean or null")
            }
            return .object(["property": .string(property), "op": .string(op), "value": operand])
        case "in":
            guard case .array(let options)? = filter["value"], (1...100).contains(options.count),
                options.allSatisfy({ $0.depth == 0 && !$0.containsNUL })
            else {
                throw AppError(.invalidField, "filters[\(index)].value must be an array of 1 to 100 scalar values")
            }
            return .object(["property": .string(property), "op": .string(op), "value": .array(options)])
        case "exists":
            return .object(["property": .string(property), "op": .string(op)])
        default:
            throw AppError(.invalidField, "filters[\(index)].op must be \"eq\", \"in\" or \"exists\"")
        }
    }

    @Sendable func create(_ request: Request, context: APIRequestContext) async throws -> Response {
        let principal = try context.requirePrincipal(.admin)
        let definition = try Self.parse(try JSONBody.parse(try await JSONBody.read(request, limit: 64 * 1024)))
        let id = UUID()
        let logger = context.logger
        try await client.withTransaction(logger: logger) { connection in
            let count = try await connection.query(
                "SELECT count(*)::int8 FROM metrics WHERE org_id = \(principal.orgID)", logger: logger
            ).collect().first?.decode(Int64.self) ?? 0
            guard count < Self.maximumMetrics else {
                throw AppError(.invalidField, "an organization may define at most \(Self.maximumMetrics) metrics")
            }
            // The horizon is this transaction's xid: see migration 0007.
            try await connection.query(
                """
                INSERT INTO metrics (org_id, id, name, event_name, aggregation, property, filters, group_by, horizon_xid)
                VALUES (\(principal.orgID), \(id), \(definition.name), \(definition.eventName),
                        \(definition.aggregation.rawValue), \(definition.property), \(definition.filters.jsonText)::jsonb,
                        \(definition.groupBy), pg_current_xact_id()::text::bigint)
                """, logger: logger)
            try await Self.enqueueBackfill(orgID: principal.orgID, metricID: id, version: 1, on: connection, logger: logger)
        }
        guard let info = try await fetch(orgID: principal.orgID, id: id, logger: logger) else {
            throw AppError(.notFound, "no such metric")
        }
        return try JSONBody.response(info, status: .created)
    }

    static func enqueueBackfill(orgID: UUID, metricID: UUID, version: Int, on connection: PostgresConnection, logger: Logger)
        async throws
    {
        let arguments = Rollups.BackfillArguments(orgID: orgID, metricID: metricID, version: version)
        let text = String(decoding: try JSONEncoder().encode(arguments), as: UTF8.self)
        _ = try await JobQueue.enqueueMany(
            [.init(kind: Rollups.backfillJobKind, arguments: text, options: .init(queue: "backfill", uniqueKey: arguments.uniqueKey, orgID: orgID))],
            on: connection, logger: logger)
    }

    @Sendable func list(_ request: Request, context: APIRequestContext) async throws -> Response {
        let principal = try context.requirePrincipal(.read)
        let metrics = try await fetchAll(orgID: principal.orgID, id: nil, logger: context.logger)
        return try JSONBody.response(["metrics": metrics])
    }

    @Sendable func show(_ request: Request, context: APIRequestContext) async throws -> Response {
        let principal = try context.requirePrincipal(.read)
        guard let info = try await fetch(orgID: principal.orgID, id: try Self.id(context), logger: context.logger) else {
            throw AppError(.notFound, "no such metric")
        }
        return try JSONBody.response(info)
    }

    @Sendable func update(_ request: Request, context: APIRequestContext) async throws -> Response {
        let principal = try context.requirePrincipal(.admin)
        let id = try Self.id(context)
        let definition = try Self.parse(try JSONBody.parse(try await JSONBody.read(request, limit: 64 * 1024)))
        let logger = context.logger
        try await client.withTransaction(logger: logger) { connection in
            // Serialized with rollup writers: no run folds with the old definition after this commits.
            try await connection.query("SELECT pg_advisory_xact_lock(\(Rollups.advisoryLockKey))", logger: logger)
            guard let row = try await connection.query(
                """
                SELECT name, event_name, aggregation, property, filters::text, group_by, builtin, version
                FROM metrics WHERE org_id = \(principal.orgID) AND id = \(id) FOR UPDATE
                """, logger: logger
            ).collect().first else { throw AppError(.notFound, "no such metric") }
            let (name, eventName, aggregation, property, filters, groupBy, builtin, version) = try row.decode(
                (String, String, String, String?, String, String?, String?, Int32).self)
            guard builtin == nil else { throw AppError(.conflict, "built-in metrics cannot be changed") }
            let current = Definition(
                name: name, eventName: eventName, aggregation: Aggregation(rawValue: aggregation) ?? .count,
                property: property, filters: JSONValue.parse(text: filters), groupBy: groupBy)
            if definition.changesRollups(from: current) {
                let next = Int(version) + 1
                try await connection.query(
                    """
                    UPDATE metrics SET name = \(definition.name), event_name = \(definition.eventName),
                        aggregation = \(definition.aggregation.rawValue), property = \(definition.property),
                        filters = \(definition.filters.jsonText)::jsonb, group_by = \(definition.groupBy),
                        version = \(Int32(next)), horizon_xid = pg_current_xact_id()::text::bigint,
                        backfill_done = false, backfill_cursor = NULL, updated_at = now()
                    WHERE org_id = \(principal.orgID) AND id = \(id)
                    """, logger: logger)
                try await connection.query(
                    "DELETE FROM rollups WHERE org_id = \(principal.orgID) AND metric_id = \(id)", logger: logger)
                try await Self.enqueueBackfill(orgID: principal.orgID, metricID: id, version: next, on: connection, logger: logger)
            } else {
                try await connection.query(
                    """
                    UPDATE metrics SET name = \(definition.name), updated_at = now()
                    WHERE org_id = \(principal.orgID) AND id = \(id)
                    """, logger: logger)
            }
        }
        guard let info = try await fetch(orgID: principal.orgID, id: id, logger: logger) else {
            throw AppError(.notFound, "no such metric")
        }
        return try JSONBody.response(info)
    }

    @Sendable func delete(_ request: Request, context: APIRequestContext) async throws -> Response {
        let principal = try context.requirePrincipal(.admin)
        let id = try Self.id(context)
        let logger = context.logger
        try await client.withTransaction(logger: logger) { connection in
            try await connection.query("SELECT pg_advisory_xact_lock(\(Rollups.advisoryLockKey))", logger: logger)
            let rows = try await connection.query(
                "SELECT builtin FROM metrics WHERE org_id = \(principal.orgID) AND id = \(id) FOR UPDATE", logger: logger
            ).collect()
            guard let row = rows.first else { throw AppError(.notFound, "no such metric") }
            guard try row.decode(String?.self) == nil else { throw AppError(.conflict, "built-in metrics cannot be deleted") }
            // Its rollups go with it (foreign key, cascade).
            try await connection.query("DELETE FROM metrics WHERE org_id = \(principal.orgID) AND id = \(id)", logger: logger)
        }
        return Response(status: .noContent)
    }

    static func id(_ context: APIRequestContext) throws -> UUID {
        guard let id = context.parameters.get("id").flatMap(UUID.init(uuidString:)) else {
            throw AppError(.notFound, "no such metric")
        }
        return id
    }

    func fetch(orgID: UUID, id: UUID, logger: Logger) async throws -> MetricInfo? {
        try await fetchAll(orgID: orgID, id: id, logger: logger).first
    }

    func fetchAll(orgID: UUID, id: UUID?, logger: Logger) async throws -> [MetricInfo] {
        let rows = try await client.query(
            """
            SELECT id, name, event_name, aggregation, property, filters::text, group_by, builtin, backfill_done,
                   created_at, updated_at
            FROM metrics WHERE org_id = \(orgID) AND (\(id)::uuid IS NULL OR id = \(id))
            ORDER BY builtin IS NULL, created_at, id
            """, logger: logger)
        var result: [MetricInfo] = []
        for try await row in rows {
            let (id, name, eventName, aggregation, property, filters, groupBy, builtin, done, created, updated) =
                try row.decode((UUID, String, String, String, String?, String, String?, String?, Bool, Date, Date).self)
            result.append(
                MetricInfo(
                    id: id.uuidString.lowercased(), name: name, event_name: eventName, aggregation: aggregation,
                    property: property, filters: JSONValue.parse(text: filters), group_by: groupBy, builtin: builtin,
                    backfill_done: done, created_at: created, updated_at: updated))
        }
        return result
    }
}
