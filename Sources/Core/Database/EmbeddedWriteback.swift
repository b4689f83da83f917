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
/// second, ingest calls that took up to 540 ms, a batch p99 of 360–460 ms, and checkpoint
/// syncs of 0.45–0.5 s. Only this process knows the files. `sync_file_range` only starts
/// the writes the kernel would make anyway, and it does not wait for them, so it changes
/// nothing PostgreSQL relies on. With an external PostgreSQL this does nothing: lower
/// `vm.dirty_background_bytes` on its machine instead (README, Commands).
public struct EmbeddedWriteback: Service {
    let setup: DatabaseSetup
    let interval: Duration
    let logger: Logger

    public init(setup: DatabaseSetup, interval: Duration = .seconds(1), logger: Logger) {
        self.setup = setup
        self.interval = interval
        self.logger = logger
    }

    /// What one look leaves for the next.
    struct Progress: Sendable {
        /// The first look takes every file: a new cluster's initdb output (written with
        /// --no-sync) and the migrations go out now, not in one burst 30 s later under
        /// the first load.
        var since = 0
        var quietLooks = 0
    }

    public func run() async throws {
        await setup.lookAtEmbeddedCluster(every: interval, state: Progress()) { cluster, progress in
            await look(dataDirectory: cluster.dataDirectory, &progress)
        }
    }

    /// One look; returns the pause before the next.
    func look(dataDirectory: String, _ progress: inout Progress) async -> Duration {
        // Seconds are enough: a file written during this look is looked at again.
        let lookStart = Self.now()
        let since = progress.since
        do {
            // Stats and system calls block: off the cooperative threads.
            let started = try await NIOThreadPool.singleton.runIfActive {
                Self.startWriteback(dataDirectory: dataDirectory, writtenSince: since)
            }
            progress.quietLooks = started.isEmpty ? progress.quietLooks + 1 : 0
        } catch {
            logger.debug("cannot start writeback of the data files", metadata: ["error": "\(error)"])
        }
        progress.since = lookStart - 1
        // Idle, a look every 5 intervals: what was written meanwhile is still far from the
        // kernel's 30 s, and a look stats every file of the cluster.
        return progress.quietLooks >= 5 ? interval * 5 : interval
    }

    static func now() -> Int {
        Int(time(nil))
    }

    /// Starts writeback of each table and index file modified at or after `writtenSince`
    /// (seconds since the epoch) and returns their paths. The write-ahead log is left
    /// alone: PostgreSQL syncs it at every commit. Read with `readdir` and `fstatat`
    /// (no path built for a file it skips): FileManager's listing made a look at a new
    /// cluster's 1,400 files cost 8 ms of CPU.
    @discardableResult
    static func startWriteback(dataDirectory: String, writtenSince: Int) -> [String] {
        var started: [String] = []
        for folder in relationFolders(dataDirectory: dataDirectory) {
            guard let directory = opendir(folder) else { continue }
            defer { closedir(directory) }
            let folderDescriptor = dirfd(directory)
            while let entry = readdir(directory) {
                // The entry's name, when its writeback was started.
                let name = withUnsafePointer(to: &entry.pointee.d_name) { raw in
                    raw.withMemoryRebound(to: CChar.self, capacity: 256) { name -> String? in
                        var info = stat()
                        guard fstatat(folderDescriptor, name, &info, AT_SYMLINK_NOFOLLOW) == 0,
                            (info.st_mode & S_IFMT) == S_IFREG, info.st_size > 0,
                            modificationSeconds(info) >= writtenSince
                        else { return nil }
                        let descriptor = openat(folderDescriptor, name, O_RDONLY | O_CLOEXEC)
                        guard descriptor >= 0 else { return nil }  // dropped since the listing
                        defer { close(descriptor) }
                        return ap_start_writeback(descriptor) == 0 ? String(cString: name) : nil
                    }
                }
                if let name { started.append(folder + "/" + name) }
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
