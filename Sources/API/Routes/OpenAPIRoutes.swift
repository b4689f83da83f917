import Foundation
import Hummingbird

/// Serves the OpenAPI document that describes every endpoint.
struct OpenAPIRoutes: Sendable {
    /// Loaded once from the resource bundle.
    static let document: String = {
        guard let url = Bundle.module.url(forResource: "openapi", withExtension: "yaml"),
            let text = try? String(contentsOf: url, encoding: .utf8)
        else { return "" }
        return text
    }()

    func register(on router: Router<APIRequestContext>) {
        router.get("/api/openapi.yaml") { _, _ in
            Response(
                status: .ok, headers: [.contentType: "application/yaml; charset=utf-8"],
                body: .init(byteBuffer: ByteBuffer(string: Self.document)))
        }
    }
}
