@testable import API
import Core
import Foundation
import Hummingbird
import HummingbirdTesting
import Logging
import NIOCore
import PostgresNIO
import TestSupport
import Testing

@Suite struct EventExportTests {
    @Test func streamsCSVAndNDJSONScopedToTheOrganization() async throws {
        try await withTestDatabase { client, _ in
            let fixture = try await IngestionFixture.make(client)
            let other = try await IngestionFixture.make(client)
            let app = Application(router: APIServer.makeRouter(.init(client: client)))
            try await app.test(.router) { http in
                // 3,000 events in three batches (several 64 KiB chunks), with hostile cells.
                for batch in 0..<3 {
                    let events = (0..<1000).map { i in
                        #"{"name": "\#(i % 2 == 0 ? "=cmd" : "view")", "user_id": "u,\#(batch)", "properties": {"note": "line\nbreak \"q\"", "n": -12.5}, "timestamp": "2026-11-20T10:\#(String(format: "%02d", i % 60)):00Z"}"#
                    }
                    let (status, body) = try await post(
                        http, "/api/events/batch", key: fixture.adminKey, json: #"{"events": ["# + events.joined(separator: ",") + "]}")
                    #expect(status == .ok && body["accepted"] as? Int == 1000)
                }
                _ = try await post(http, "/api/events", key: other.adminKey, json: #"{"name": "secret", "timestamp": "2026-11-20T10:00:00Z"}"#)
                let range = "start=2026-11-20T00:00:00Z&end=2026-11-21T00:00:00Z"
                func get(_ uri: String, key: String) async throws -> (HTTPResponse.Status, String, String?) {
                    try await http.execute(uri: uri, method: .get, headers: [.authorization: "Bearer \(key)"]) {
                        ($0.status, String(buffer: $0.body), $0.headers[.contentType])
                    }
                }
                let (status, csv, type) = try await get("/api/events/export?format=csv&bom=true&\(range)", key: fixture.adminKey)
                #expect(status == .ok && type == "text/csv; charset=utf-8")
                #expect(!csv.contains("secret"))
                // Python's csv module reads back 3,000 rows plus the header, cells intact.
                let path = FileManager.default.temporaryDirectory.appendingPathComponent("export-\(getpid()).csv").path
                #expect(FileManager.default.createFile(atPath: path, contents: Data(csv.utf8)))
                let script = """
                    import csv, json, sys
                    rows = list(csv.reader(open(sys.argv[1], newline='', encoding='utf-8-sig')))
                    print(json.dumps({"n": len(rows), "header": rows[0], "names": sorted(set(r[1] for r in rows[1:])),
                                      "users": sorted(set(r[4] for r in rows[1:])), "props": json.loads(rows[1][6])}))
                    """
                let (code, out, err) = try await ChildProcess.run("/usr/bin/env", ["python3", "-c", script, path])
                #expect(code == 0, "\(err)")
                let parsed = try JSONSerialization.jsonObject(with: Data(out.utf8)) as? [String: Any] ?? [:]
                #expect(parsed["n"] as? Int == 3001)
                #expect(parsed["header"] as? [String] == EventExportSource.columns)
                #expect(parsed["names"] as? [String] == ["'=cmd", "view"])  // formula neutralised
                #expect(parsed["users"] as? [String] == ["u,0", "u,1", "u,2"])
                #expect((parsed["props"] as? [String: Any])?["note"] as? String == "line\nbreak \"q\"")

                let (ndStatus, ndjson, ndType) = try await get("/api/events/export?format=ndjson&event=view&\(range)", key: fixture.adminKey)
                #expect(ndStatus == .ok && ndType == "application/x-ndjson")
                let lines = ndjson.split(separator: "\n")
                #expect(lines.count == 1500)
                let first = try JSONSerialization.jsonObject(with: Data(lines[0].utf8)) as? [String: Any]
                #expect(first?["name"] as? String == "view")
                #expect((first?["properties"] as? [String: Any])?["n"] as? Double == -12.5)

                let (bad, _, _) = try await get("/api/events/export?format=xlsx&\(range)", key: fixture.adminKey)
                #expect(bad == .unprocessableContent)
                let (missing, _, _) = try await get("/api/events/export?format=csv", key: fixture.adminKey)
                #expect(missing == .unprocessableContent)
                let (otherStatus, otherCSV, _) = try await get("/api/events/export?\(range)", key: other.adminKey)
                #expect(otherStatus == .ok && otherCSV.contains("secret") && !otherCSV.contains("view"))
            }
        }
    }
}
