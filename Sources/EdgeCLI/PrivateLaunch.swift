import ArgumentParser
import EdgeModel
import EdgeNet
import EdgeSim
import Foundation

/// Without root, `run` and `up` start again inside a private network of their own (a user and
/// network namespace), where ports below 1024 bind and addresses are the run's alone.
enum PrivateLaunch {
    /// Set to run on the machine's own loopback instead (the older way, ports above 1024 only).
    static let optOut = "EDGESIM_NO_PRIVATE_NETWORK"

    /// The command's exit status once it has run inside a private network, or nil to go on here
    /// (root, already inside, or user namespaces not allowed: said why).
    static func relaunch() async -> Int32? {
        guard !HostChecks.isRoot, !PrivateNetwork.isInside,
            ProcessInfo.processInfo.environment[optOut] == nil,
            URL(fileURLWithPath: HostChecks.executablePath).lastPathComponent == "edgesim"
        else { return nil }
        let pid: pid_t
        do {
            pid = try PrivateNetwork.spawn(HostChecks.executablePath, EdgesimMain.invocation)
        } catch {
            printError("note: no private network: \(error); running on this machine's loopback, where ports below 1024 need root")
            return nil
        }
        // Ctrl-C reaches both; a signal sent to this process alone is passed on.
        let forward = SignalWatch([SIGINT, SIGTERM]) { signal in kill(pid, signal) }
        defer { forward.stop() }
        return await withCheckedContinuation { continuation in
            Thread { continuation.resume(returning: PrivateNetwork.wait(pid)) }.start()
        }
    }

    /// Inside the private network: loopback up and the namespace folders its own, first.
    static func prepareInside() throws {
        guard PrivateNetwork.isInside else { return }
        do {
            try PrivateNetwork.prepare()
        } catch {
            printError("error: cannot bring up the private network's loopback: \(error)")
            throw ExitCode(1)
        }
    }
}
