import CLinuxShim
import Foundation
import Logging
import Testing

@testable import Core

@Suite(.serialized) struct EmbeddedWritebackTests {
    /// A data folder's layout: tables and indexes under `global` and `base/<database>`,
    /// the write-ahead log in `pg_wal`.
    static func makeDataDirectory() throws -> String {
        let data = "/tmp/aptest-writeback-\(UUID().uuidString.prefix(8))"
        for folder in ["global", "base/1", "base/5", "pg_wal"] {
            try FileManager.default.createDirectory(atPath: data + "/" + folder, withIntermediateDirectories: true)
        }
        return data
    }

    static func write(_ path: String, bytes: Int) throws {
        guard writeFile(path, bytes: bytes) else { throw CocoaError(.fileWriteUnknown) }
    }

    @Test func looksOnlyAtRecentlyWrittenTableAndIndexFiles() throws {
        let data = try Self.makeDataDirectory()
        defer { try? FileManager.default.removeItem(atPath: data) }
        try Self.write(data + "/base/5/16915", bytes: 8192)
        try Self.write(data + "/base/1/1259", bytes: 8192)
        try Self.write(data + "/global/1262", bytes: 8192)
        try Self.write(data + "/base/5/16920", bytes: 8192)  // written an hour ago
        try FileManager.default.setAttributes(
            [.modificationDate: Date().addingTimeInterval(-3600)], ofItemAtPath: data + "/base/5/16920")
        try Self.write(data + "/base/5/16930", bytes: 0)  // empty: nothing to write
        try Self.write(data + "/pg_wal/000000010000000000000001", bytes: 8192)  // synced by PostgreSQL

        let started = EmbeddedWriteback.startWriteback(dataDirectory: data, writtenSince: EmbeddedWriteback.now() - 60)
        #expect(Set(started) == [data + "/base/5/16915", data + "/base/1/1259", data + "/global/1262"])
        // A folder that is not there (a cluster being removed) is skipped, not an error.
        #expect(EmbeddedWriteback.startWriteback(dataDirectory: data + "/gone", writtenSince: 0).isEmpty)
    }

    /// The pages written into the page cache go to the disk now, not 30 s later in one burst.
    @Test(.enabled(if: cachedPagesVisible(), "needs Linux 6.5 (cachestat) and /tmp on a disk, not in memory"))
    func startsTheKernelsWritebackOfAFilesDirtyPages() async throws {
        let data = try Self.makeDataDirectory()
        defer { try? FileManager.default.removeItem(atPath: data) }
        let path = data + "/base/5/16915"
        let pages = (96 << 20) / Int(getpagesize())
        try Self.write(path, bytes: pages * Int(getpagesize()))
        let written = try #require(cachedPages(path))
        // Nothing has written them yet: the kernel would wait until they are 30 s old.
        try #require(written.dirty + written.writeback >= pages * 9 / 10, "\(written) of \(pages) pages")

        let started = EmbeddedWriteback.startWriteback(dataDirectory: data, writtenSince: EmbeddedWriteback.now() - 60)
        #expect(started == [path])
        var now = written
        for _ in 0..<100 where now.dirty > pages / 10 {
            try await Task.sleep(for: .milliseconds(50))
            now = try #require(cachedPages(path))
        }
        #expect(now.dirty <= pages / 10, "\(now.dirty) of \(pages) pages still dirty 5 s after the writeback started")
    }
    /// The service on a real cluster: its first look takes what was written before it
    /// started (a new cluster's files), later looks what is written while it runs.
    @Test(.enabled(if: cachedPagesVisible(), "needs Linux 6.5 (cachestat) and /tmp on a disk, not in memory"))
    func theServiceWritesOutWhatTheClusterWrote() async throws {
        let logger = Logger(label: "test.writeback")
        let state = "/tmp/aptest-writeback-\(UUID().uuidString.prefix(8))"
        try FileManager.default.createDirectory(atPath: state, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: state) }
        let setup = try DatabaseSetup.prepare(AppConfiguration(stateDirectory: state), logger: logger)
        defer { setup.shutdown(logger: logger) }
        let cluster = try #require(setup.embedded)
        // Stand-ins for a table's new pages, in the application database's folder.
        let folder = try #require(
            EmbeddedWriteback.relationFolders(dataDirectory: cluster.dataDirectory).max { a, b in
                (Int(a.split(separator: "/").last ?? "") ?? 0) < (Int(b.split(separator: "/").last ?? "") ?? 0)
            })
        let pages = (32 << 20) / Int(getpagesize())
        let before = folder + "/999990", during = folder + "/999991"
        defer { for path in [before, during] { try? FileManager.default.removeItem(atPath: path) } }
        try Self.write(before, bytes: pages * Int(getpagesize()))
        // Written a minute before the process started, as by initdb and the migrations.
        try FileManager.default.setAttributes([.modificationDate: Date().addingTimeInterval(-60)], ofItemAtPath: before)
        try #require((cachedPages(before)?.dirty ?? 0) >= pages * 9 / 10)

        let service = Task { try await EmbeddedWriteback(setup: setup, interval: .milliseconds(100), logger: logger).run() }
        defer { service.cancel() }
        #expect(try await Self.becomesClean(before, pages: pages))
        try Self.write(during, bytes: pages * Int(getpagesize()))
        #expect(try await Self.becomesClean(during, pages: pages))
    }

    /// At most a tenth of the file's pages still dirty within 5 s.
    static func becomesClean(_ path: String, pages: Int) async throws -> Bool {
        for _ in 0..<100 {
            if let cached = cachedPages(path), cached.dirty <= pages / 10 { return true }
            try await Task.sleep(for: .milliseconds(50))
        }
        return false
    }
}

/// Writes a file of `bytes` without syncing it (Foundation's `Data.write` syncs).
func writeFile(_ path: String, bytes: Int) -> Bool {
    let descriptor = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0o600)
    guard descriptor >= 0 else { return false }
    defer { close(descriptor) }
    let chunk = [UInt8](repeating: 7, count: 1 << 20)
    var left = bytes
    while left > 0 {
        let count = chunk.withUnsafeBytes { Glibc.write(descriptor, $0.baseAddress, min(left, chunk.count)) }
        guard count > 0 else { return false }
        left -= count
    }
    return true
}

/// A file's dirty pages and those being written, or nil where cachestat is missing.
func cachedPages(_ path: String) -> (dirty: Int, writeback: Int)? {
    let descriptor = open(path, O_RDONLY)
    guard descriptor >= 0 else { return nil }
    defer { close(descriptor) }
    var dirty: Int64 = 0, writeback: Int64 = 0
    guard ap_cached_pages(descriptor, &dirty, &writeback) == 0 else { return nil }
    return (Int(dirty), Int(writeback))
}

/// cachestat answers, and a file just written in /tmp has dirty pages (in tmpfs they never are).
func cachedPagesVisible() -> Bool {
    let path = "/tmp/aptest-writeback-probe-\(UUID().uuidString.prefix(8))"
    defer { try? FileManager.default.removeItem(atPath: path) }
    guard writeFile(path, bytes: 65536), let pages = cachedPages(path)
    else { return false }
    return pages.dirty + pages.writeback > 0
}
