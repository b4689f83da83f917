import Foundation
import Logging
import NIOCore
import PostgresNIO

extension JobQueue {
    /// Whether `jobs` can take the COPY path: nothing to check against existing rows
    /// (no unique keys) and nothing scheduled (run_at defaults to the server's now()).
    static func canCopy(_ jobs: [NewJob]) -> Bool {
        jobs.allSatisfy { $0.options.uniqueKey == nil && $0.options.runAt == nil }
    }

    /// Bulk insert through `COPY jobs FROM STDIN`, then one NOTIFY per queue. COPY has
    /// no ON CONFLICT, so it is only used when `canCopy` holds.
    static func copy(_ jobs: [NewJob], on connection: PostgresConnection, logger: Logger) async throws -> Int {
        for job in jobs { try job.validate() }
        try await connection.copyFrom(
            table: "jobs",
            columns: ["kind", "queue", "args", "priority", "max_attempts", "timeout_ms", "org_id"],
            logger: logger
        ) { writer in
            var buffer = ByteBuffer()
            buffer.reserveCapacity(256 * 1024)
            for job in jobs {
                appendCopyText(job.kind, to: &buffer)
                buffer.writeInteger(UInt8(ascii: "\t"))
                appendCopyText(job.options.queue ?? "default", to: &buffer)
                buffer.writeInteger(UInt8(ascii: "\t"))
                appendCopyText(job.arguments, to: &buffer)
                buffer.writeString("\t\(job.options.priority)\t\(job.maxAttempts)\t")
                if let timeout = job.timeout {
                    buffer.writeString(String(Int32(clamping: timeout.milliseconds)))
                } else {
                    buffer.writeString("\\N")
                }
                buffer.writeInteger(UInt8(ascii: "\t"))
                buffer.writeString(job.options.orgID?.uuidString ?? "\\N")
                buffer.writeInteger(UInt8(ascii: "\n"))
                if buffer.readableBytes > 192 * 1024 {
                    try await writer.write(buffer)
                    buffer.clear()
                }
            }
            if buffer.readableBytes > 0 { try await writer.write(buffer) }
        }
        let queues = Array(Set(jobs.map { $0.options.queue ?? "default" }))
        try await connection.query(
            "SELECT pg_notify(\(notifyChannel), q) FROM unnest(\(queues)::text[]) AS q", logger: logger)
        return jobs.count
    }

    /// COPY text format: backslash, tab, newline and carriage return are escaped.
    static func appendCopyText(_ text: String, to buffer: inout ByteBuffer) {
        for byte in text.utf8 {
            switch byte {
            case UInt8(ascii: "\\"): buffer.writeStaticString("\\\\")
            case UInt8(ascii: "\t"): buffer.writeStaticString("\\t")
            case UInt8(ascii: "\n"): buffer.writeStaticString("\\n")
            case UInt8(ascii: "\r"): buffer.writeStaticString("\\r")
            default: buffer.writeInteger(byte)
            }
        }
    }
}
