import Foundation

/// The ranges of user and group ids /etc/subuid and /etc/subgid give a user (as rootless
/// containers use them), mapped into a private network after the user's own id, so programs
/// that switch to users of their own (Postfix's `postfix`) run there too.
public struct SubordinateIDs: Sendable, Equatable {
    public var users: ClosedRange<UInt32>
    public var groups: ClosedRange<UInt32>

    public static let newuidmap = "/usr/bin/newuidmap"
    public static let newgidmap = "/usr/bin/newgidmap"

    /// The first range each file gives the user (by name or by number); nil when either file
    /// gives none.
    public static func find(user: String?, uid: UInt32, gid: UInt32, subuid: String, subgid: String) -> SubordinateIDs? {
        guard let users = range(in: subuid, for: [user, "\(uid)"]), let groups = range(in: subgid, for: [user, "\(gid)", "\(uid)"])
        else { return nil }
        return SubordinateIDs(users: users, groups: groups)
    }

    /// The ranges of the user running this process, when the helpers to map them are installed.
    public static func forThisUser() -> SubordinateIDs? {
        let manager = FileManager.default
        guard manager.isExecutableFile(atPath: newuidmap), manager.isExecutableFile(atPath: newgidmap),
            let subuid = try? String(contentsOfFile: "/etc/subuid", encoding: .utf8),
            let subgid = try? String(contentsOfFile: "/etc/subgid", encoding: .utf8)
        else { return nil }
        let name = getpwuid(getuid()).flatMap { $0.pointee.pw_name.map { String(cString: $0) } }
        return find(user: name, uid: getuid(), gid: getgid(), subuid: subuid, subgid: subgid)
    }

    /// Lines are `owner:first:count`; comments and malformed lines are passed over.
    static func range(in text: String, for owners: [String?]) -> ClosedRange<UInt32>? {
        let wanted = Set(owners.compactMap { $0 })
        for line in text.split(separator: "\n") {
            let fields = line.split(separator: ":", omittingEmptySubsequences: false)
            guard fields.count == 3, wanted.contains(String(fields[0])), let first = UInt32(fields[1]), let count = UInt32(fields[2]),
                count > 0, first.addingReportingOverflow(count - 1).overflow == false
            else { continue }
            return first...(first + count - 1)
        }
        return nil
    }

    /// newuidmap's and newgidmap's arguments: id 0 is the user, 1... the subordinate ids; the
    /// second entry is left for the process id.
    public func helperArguments(uid: UInt32, gid: UInt32) -> (users: [String], groups: [String]) {
        func map(_ own: UInt32, _ range: ClosedRange<UInt32>) -> [String] {
            ["0", "\(own)", "1", "1", "\(range.lowerBound)", "\(range.count)"]
        }
        return ([Self.newuidmap, ""] + map(uid, users), [Self.newgidmap, ""] + map(gid, groups))
    }
}
