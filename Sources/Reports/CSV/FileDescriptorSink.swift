#if canImport(Glibc)
import Glibc
#endif

/// Writes CSV to a file descriptor through a 64 KiB buffer; call `flush()` at the end.
public struct FileDescriptorSink: CSVSink {
    public let descriptor: Int32
    private var buffer: [UInt8] = []
    public private(set) var bytesWritten = 0
    /// The first write error (errno), after which nothing more is written.
    public private(set) var failure: Int32?

    public init(descriptor: Int32) {
        self.descriptor = descriptor
        buffer.reserveCapacity(1 << 16)
    }

    public mutating func write(_ bytes: [UInt8]) {
        buffer.append(contentsOf: bytes)
        if buffer.count >= 1 << 16 { flush() }
    }

    public mutating func flush() {
        guard failure == nil, !buffer.isEmpty else { return }
        var offset = 0
        while offset < buffer.count {
            let written = buffer.withUnsafeBytes { Glibc.write(descriptor, $0.baseAddress! + offset, $0.count - offset) }
            if written < 0 {
                if errno == EINTR { continue }
                failure = errno
                return
            }
            offset += written
        }
        bytesWritten += buffer.count
        buffer.removeAll(keepingCapacity: true)
    }
}
