import Core
import Foundation
import Hummingbird
import Logging
import PostgresNIO

/// `GET/POST/PUT/DELETE /api/dashboards` and `GET /api/dashboards/:id/data`.
struct DashboardRoutes: Sendable {
    let client: PostgresClient
    static let maximumWidgets = 50

    func register(on group: RouterGroup<APIRequestContext>) {
        group.post("dashboards", use: create)
        group.get("dashboards", use: list)
        group.get("dashboards/:id", use: show)
        group.put("dashboards/:id", use: update)
        group.delete("dashboards/:id", use: delete)
        group.get("dashboards/:id/data", use: data)
    }

    struct Body {
        var name: String
        var description: String?
        var config: JSONValue
        var widgets: [Widget]
        var isPublic: Bool
        var tags: [String]
    }

    func parse(_ value: JSONValue, orgID: UUID, logger: Logger) async throws -> Body {
        guard case .object(let fields) = value else { throw AppError(.invalidJSON, "request body must be a JSON object") }
        guard case .string(let name)? = fields["name"], (1...255).contains(name.count), !name.utf8.contains(0) else {
            throw AppError(.invalidField, "'name' must be a string of 1 to 255 characters")
        }
        var description: String?
        switch fields["description"] {
        case nil, .null?: break
        case .string(let text)? where text.count <= 10_000 && !text.utf8.contains(0): description = text
        default: throw AppError(.invalidField, "'description' must be a string of at most 10,000 characters")
        }
        var config: [String: JSONValue] = [:]
        switch fields["config"] {
        case nil, .null?: break
        case .object(let object)?:
            guard !JSONValue.object(object).containsNUL, JSONValue.object(object).depth <= 16 else {
                throw AppError(.invalidField, "'config' must be a JSON object without NUL characters, at most 16 levels deep")
            }
            config = object
        default: throw AppError(.invalidField, "'config' must be an object")
        }
        var widgets: [Widget] = []
        switch config["widgets"] {
        case nil, .null?: break
        case .array(let values)?:
            guard values.count <= Self.maximumWidgets else {
                throw AppError(.invalidField, "a dashboard holds at most \(Self.maximumWidgets) widgets")
            }
            for (index, value) in values.enumerated() { widgets.append(try Widget.parse(value, index: index)) }
        default: throw AppError(.invalidField, "'config.widgets' must be an array")
        }
        guard Set(widgets.map(\.id)).count == widgets.count else {
            throw AppError(.invalidField, "widget ids must be unique within a dashboard")
        }
        // Every widget's metric must be this organization's.
        let ids = Array(Set(widgets.map(\.metricID)))
        let known = try await RollupReader(client: client).metrics(orgID: orgID, ids: ids, logger: logger)
        if let missing = widgets.firstIndex(where: { known[$0.metricID] == nil }) {
            throw AppError(.invalidField, "config.widgets[\(missing)].metric_id: no such metric")
        }
        config["widgets"] = .array(widgets.map(\.json))
        var isPublic = false
        switch fields["is_public"] {
        case nil, .null?: break
        case .bool(let value)?: isPublic = value
        default: throw AppError(.invalidField, "'is_public' must be a boolean")
        }
        var tags: [String] = []
        switch fields["tags"] {
        case nil, .null?: break
        case .array(let values)? where values.count <= 20:
            for value in values {
                guard case .string(let tag) = value, (1...100).contains(tag.count), !tag.utf8.contains(0) else {
                    throw AppError(.invalidField, "'tags' must hold strings of 1 to 100 characters")
                }
                tags.append(tag)
            }
        default: throw AppError(.invalidField, "'tags' must be an array of at most 20 strings")
        }
        return Body(
            name: name, description: description, config: .object(config), widgets: widgets, isPublic: isPublic, tags: tags)
    }

    @Sendable func create(_ request: Request, context: APIRequestContext) async throws -> Response {
        let principal = try context.requirePrincipal(.admin)
        let body = try await parse(
            try JSONBody.parse(try await JSONBody.read(request, limit: 256 * 1024)), orgID: principal.orgID,
            logger: context.logger)
        let id = UUID()
        try await client.query(
            """
            INSERT INTO dashboards (org_id, id, name, description, config, is_public, tags)
            VALUES (\(principal.orgID), \(id), \(body.name), \(body.description), \(body.config.jsonText)::jsonb,
                    \(body.isPublic), \(body.tags)::varchar[])
            """, logger: context.logger)
        return try await respond(orgID: principal.orgID, id: id, status: .created, logger: context.logger)
    }

    @Sendable func list(_ request: Request, context: APIRequestContext) async throws -> Response {
        let principal = try context.requirePrincipal(.read)
        let dashboards = try await fetch(orgID: principal.orgID, id: nil, logger: context.logger)
        return JSONBody.response(jsonText: JSONValue.object(["dashboards": .array(dashboards)]).jsonText)
    }

    @Sendable func show(_ request: Request, context: APIRequestContext) async throws -> Response {
        let principal = try context.requirePrincipal(.read)
        return try await respond(orgID: principal.orgID, id: try Self.id(context), status: .ok, logger: context.logger)
    }

    @Sendable func update(_ request: Request, context: APIRequestContext) async throws -> Response {
        let principal = try context.requirePrincipal(.admin)
        let id = try Self.id(context)
        let body = try await parse(
            try JSONBody.parse(try await JSONBody.read(request, limit: 256 * 1024)), orgID: principal.orgID,
            logger: context.logger)
        let updated = try await client.query(
            """
            UPDATE dashboards SET name = \(body.name), description = \(body.description),
                config = \(body.config.jsonText)::jsonb, is_public = \(body.isPublic), tags = \(body.tags)::varchar[],
                updated_at = now()
            WHERE org_id = \(principal.orgID) AND id = \(id) RETURNING id
            """, logger: context.logger
        ).collect()
        guard !updated.isEmpty else { throw AppError(.notFound, "no such dashboard") }
        return try await respond(orgID: principal.orgID, id: id, status: .ok, logger: context.logger)
    }

    @Sendable func delete(_ request: Request, context: APIRequestContext) async throws -> Response {
        let principal = try context.requirePrincipal(.admin)
        let deleted = try await client.query(
            "DELETE FROM dashboards WHERE org_id = \(principal.orgID) AND id = \(try Self.id(context)) RETURNING id",
            logger: context.logger
        ).collect()
        guard !deleted.isEmpty else { throw AppError(.notFound, "no such dashboard") }
        return Response(status: .noContent)
    }

    @Sendable func data(_ request: Request, context: APIRequestContext) async throws -> Response {
        let principal = try context.requirePrincipal(.read)
        let store = DashboardData(client: client)
        guard let dashboard = try await store.load(orgID: principal.orgID, id: try Self.id(context), logger: context.logger)
        else { throw AppError(.notFound, "no such dashboard") }
        return JSONBody.response(
            jsonBytes: try await store.json(orgID: principal.orgID, dashboard: dashboard, logger: context.logger))
    }

    static func id(_ context: APIRequestContext) throws -> UUID {
        guard let id = context.parameters.get("id").flatMap(UUID.init(uuidString:)) else {
            throw AppError(.notFound, "no such dashboard")
        }
        return id
    }

    func respond(orgID: UUID, id: UUID, status: HTTPResponse.Status, logger: Logger) async throws -> Response {
        guard let dashboard = try await fetch(orgID: orgID, id: id, logger: logger).first else {
            throw AppError(.notFound, "no such dashboard")
        }
        return JSONBody.response(jsonText: dashboard.jsonText, status: status)
    }

    func fetch(orgID: UUID, id: UUID?, logger: Logger) async throws -> [JSONValue] {
        let rows = try await client.query(
            """
            SELECT id, name, description, config::text, is_public, array_to_json(tags)::text, created_at, updated_at
            FROM dashboards WHERE org_id = \(orgID) AND (\(id)::uuid IS NULL OR id = \(id))
            ORDER BY created_at, id
            """, logger: logger)
        var result: [JSONValue] = []
        for try await row in rows {
            let (id, name, description, config, isPublic, tags, created, updated) = try row.decode(
                (UUID, String, String?, String, Bool, String, Date, Date).self)
            result.append(
                .object([
                    "id": .string(id.uuidString.lowercased()), "name": .string(name),
                    "description": description.map(JSONValue.string) ?? .null, "config": JSONValue.parse(text: config),
                    "is_public": .bool(isPublic), "tags": JSONValue.parse(text: tags),
                    "created_at": .string(Timestamps.format(created)), "updated_at": .string(Timestamps.format(updated)),
                ]))
        }
        return result
    }
}
