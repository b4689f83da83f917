import CLinuxShim
import Foundation
import Logging
import NIOPosix
import ServiceLifecycle

#if canImport(Glibc)
import Glibc
#endif

/// Starts the kernel's writeback of the embedded cluster's recently written table and
/// index files every second, so that it runs steadily instead of in bursts that stall
/// every commit.
///
/// PostgreSQL 15 grows a table by writing zero-filled pages, and it never asks the
/// kernel to flush those writes (its `*_flush_after` settings cover only the pages it
/// writes out of its buffers). At full ingest they pile up at about 20 MB/s. Then the
/// kernel writes them all at once when the file's oldest dirty page is 30 s old
/// (`vm.dirty_expire_centisecs`), and a checkpoint's fsync writes the ones added while
/// it ran. Measured here with batches of 100 from 64 connections: 290 MB written in one
/// second, ingest calls that took 380–540 ms, a batch p99 of 360–460 ms, and checkpoint
/// syncs of 0.45–0.5 s. Only this process knows the files. `sync_file_range` only starts
/// the writes the kernel would make anyway, and it does not wait for them, so it changes
/// nothing PostgreSQL relies on. With an external PostgreSQL this does nothing: lower
/// `vm.dirty_background_bytes` on its machine instead (README, Operations).
public struct EmbeddedWriteback: Service {
    let setup: DatabaseSetup
    let interval: Duration
    let logger: Logger

    public init(setup: DatabaseSetup, interval: Duration = .seconds(1), logger: Logger) {
        self.setup = setup
        self.interval = interval
        self.logger = logger
    }

    public func run() async throws {
        // Returning early would end the whole service group: wait for its shutdown instead.
        guard let cluster = setup.embedded else {
            try? await gracefulShutdown()
            return
        }
        let dataDirectory = cluster.dataDirectory
        await cancelWhenGracefulShutdown {
            var since = Self.now() - 1
            while !Task.isCancelled {
                try? await Task.sleep(for: interval)
                if Task.isCancelled { return }
                // Seconds are enough: a file written during the previous pass is looked at again.
                let passStart = Self.now()
                let window = since
                do {
                    // Stats and system calls block: off the cooperative threads.
                    _ = try await NIOThreadPool.singleton.runIfActive {
                        Self.startWriteback(dataDirectory: dataDirectory, writtenSince: window)
                    }
                } catch {
                    logger.debug("cannot start writeback of the data files", metadata: ["error": "\(error)"])
                }
                since = passStart - 1
            }
        }
    }

    static func now() -> Int {
        Int(time(nil))
    }

    /// Starts writeback of each table and index file modified at or after `writtenSince`
    /// (seconds since the epoch) and returns their paths. The write-ahead log is left
    /// alone: PostgreSQL syncs it at every commit.
    @discardableResult
    static func startWriteback(dataDirectory: String, writtenSince: Int) -> [String] {
        var started: [String] = []
        for folder in relationFolders(dataDirectory: dataDirectory) {
            guard let names = try? FileManager.default.contentsOfDirectory(atPath: folder) else { continue }
            for name in names {
                let path = folder + "/" + name
                var info = stat()
                guard stat(path, &info) == 0, (info.st_mode & S_IFMT) == S_IFREG, info.st_size > 0,
                    modificationSeconds(info) >= writtenSince
                else { continue }
                let descriptor = open(path, O_RDONLY | O_CLOEXEC)
                guard descriptor >= 0 else { continue }  // dropped since the listing
                if ap_start_writeback(descriptor) == 0 { started.append(path) }
                close(descriptor)
            }
        }
        return started
    }

    static func modificationSeconds(_ info: stat) -> Int {
        #if os(Linux)
        Int(info.st_mtim.tv_sec)
        #else
        Int(info.st_mtimespec.tv_sec)
        #endif
    }

    /// `global` and each database's folder under `base`.
    static func relationFolders(dataDirectory: String) -> [String] {
        let base = dataDirectory + "/base"
        let databases = (try? FileManager.default.contentsOfDirectory(atPath: base)) ?? []
        return [dataDirectory + "/global"] + databases.sorted().map { base + "/" + $0 }
    }
}
