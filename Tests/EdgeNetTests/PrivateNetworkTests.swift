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

/// Reading /etc/subuid and /etc/subgid: the user's first range, by name or number; anything else
/// passed over.
@Suite struct SubordinateIDsTests {
    @Test func theUsersRangesAreFoundByNameOrNumber() throws {
        let subuid = "# ranges\nalice:100000:65536\nedgesim-test:1000000:65536\n"
        let subgid = "995:2000000:1000\n"
        let found = try #require(SubordinateIDs.find(user: "edgesim-test", uid: 999, gid: 995, subuid: subuid, subgid: subgid))
        #expect(found.users == 1_000_000...1_065_535)
        #expect(found.groups == 2_000_000...2_000_999)
        let (users, groups) = found.helperArguments(uid: 999, gid: 995)
        #expect(users == [SubordinateIDs.newuidmap, "", "0", "999", "1", "1", "1000000", "65536"])
        #expect(groups == [SubordinateIDs.newgidmap, "", "0", "995", "1", "1", "2000000", "1000"])
    }

    @Test func noRangeOrABrokenLineGivesNone() {
        #expect(SubordinateIDs.find(user: "bob", uid: 1001, gid: 1001, subuid: "alice:100000:65536\n", subgid: "bob:1:1\n") == nil)
        for broken in ["bob:100000\n", "bob:x:65536\n", "bob:100000:0\n", "bob:4294967295:2\n", "bob:-1:5\n"] {
            #expect(SubordinateIDs.find(user: "bob", uid: 1001, gid: 1001, subuid: broken, subgid: "bob:1:1\n") == nil, "\(broken)")
        }
        // A broken line does not hide a good one after it.
        let found = SubordinateIDs.find(user: "bob", uid: 1001, gid: 1001, subuid: "bob:x:1\nbob:5:5\n", subgid: "1001:7:1\n")
        #expect(found?.users == 5...9)
    }
}
