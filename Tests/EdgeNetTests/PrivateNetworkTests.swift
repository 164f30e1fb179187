import EdgeNet
import Foundation
import Testing

/// The parts of a private network that need no user namespace to check: what a refusal says,
/// and exit statuses as a shell gives them.
@Suite struct PrivateNetworkUnitTests {
    @Test func aRefusedUserNamespaceSaysWhatToEnable() {
        for error in [EPERM, ENOSPC, EACCES] {
            let text = PrivateNetwork.explain(error)
            #expect(text.contains("user.max_user_namespaces") && text.contains("or run as root"), "\(text)")
        }
        #expect(PrivateNetwork.explain(ENOMEM).hasPrefix("cannot make a private network"))
    }

    @Test func exitStatusesAreAShellsOnes() throws {
        let exited = try PrivateNetwork.spawn(["/bin/sh", "-c", "exit 3"], enteringProcess: 0)
        #expect(PrivateNetwork.wait(exited) == 3)
        let killed = try PrivateNetwork.spawn(["/bin/sh", "-c", "kill -9 $$"], enteringProcess: 0)
        #expect(PrivateNetwork.wait(killed) == 128 + 9)
        #expect(throws: PrivateNetwork.Failure.self) { try PrivateNetwork.spawn(["/nonexistent/program"], enteringProcess: 0) }
    }

    @Test func thisProcessIsNotInAnotherUserNamespace() {
        #expect(!PrivateNetwork.isInOtherUserNamespace(getpid()))
        #expect(!PrivateNetwork.isInside)
    }
}
