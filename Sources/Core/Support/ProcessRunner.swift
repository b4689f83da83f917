import Foundation

#if canImport(Glibc)
import Glibc
#endif

/// Runs a helper program (initdb, pg_ctl, psql) to completion and captures its output.
///
/// Uses `posix_spawn` and `waitpid` directly: Foundation's `Process` can wait forever
/// when the helper leaves a daemon behind (pg_ctl start), and output goes to a file
/// rather than a pipe that such a daemon could inherit.
public enum ProcessRunner {
    public struct Result: Sendable {
        public let status: Int32
        public let output: String
    }

    public struct SpawnError: Error, CustomStringConvertible {
        public let description: String
    }

    /// Runs `executable` with `arguments`, optionally as another user through `runuser`
    /// (PostgreSQL refuses to run as root).
    @discardableResult
    public static func run(
        _ executable: String, _ arguments: [String], asUser user: String? = nil,
        environment: [String: String]? = nil
    ) throws -> Result {
        var argv: [String]
        if let user {
            let runuser = ["/usr/sbin/runuser", "/sbin/runuser"].first { FileManager.default.isExecutableFile(atPath: $0) }
            guard let runuser else { throw SpawnError(description: "runuser (util-linux) not found") }
            argv = [runuser, "-u", user, "--", executable] + arguments
        } else {
            argv = [executable] + arguments
        }
        let outputPath = FileManager.default.temporaryDirectory
            .appendingPathComponent("analyticspro-\(UUID().uuidString).out").path
        defer { unlink(outputPath) }

        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
        posix_spawn_file_actions_addopen(&actions, 1, outputPath, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
        posix_spawn_file_actions_adddup2(&actions, 1, 2)
        // The child (and a server it daemonises) must not keep this process's sockets
        // and pipes open.
        _ = spawnActionsCloseFrom(&actions, 3)

        let env = (environment ?? ProcessInfo.processInfo.environment).map { "\($0.key)=\($0.value)" }
        let cArgs = argv.map { strdup($0) } + [nil]
        let cEnv = env.map { strdup($0) } + [nil]
        defer {
            cArgs.forEach { free($0) }
            cEnv.forEach { free($0) }
        }
        var pid: pid_t = 0
        let spawned = posix_spawn(&pid, argv[0], &actions, nil, cArgs, cEnv)
        guard spawned == 0 else {
            throw SpawnError(description: "cannot run \(argv[0]): \(String(cString: strerror(spawned)))")
        }
        var status: Int32 = 0
        while waitpid(pid, &status, 0) < 0 {
            guard errno == EINTR else { throw SpawnError(description: "waitpid failed for \(argv[0])") }
        }
        let exitStatus: Int32 = (status & 0x7f) == 0 ? (status >> 8) & 0xff : 128 + (status & 0x7f)
        let data = FileManager.default.contents(atPath: outputPath) ?? Data()
        return Result(status: exitStatus, output: String(decoding: data, as: UTF8.self))
    }
}

/// glibc ≥ 2.34 has it, but its header hides it behind _GNU_SOURCE.
@_silgen_name("posix_spawn_file_actions_addclosefrom_np")
public func spawnActionsCloseFrom(_ actions: UnsafeMutablePointer<posix_spawn_file_actions_t>, _ lowestFD: Int32) -> Int32
