import Foundation

/// What each side of an `EmulatedLink` is inside its namespace.
public enum LinkDevice: String, Sendable, CustomStringConvertible {
    /// A TUN device: packets read and written through /dev/net/tun.
    case tun
    /// A veth pair: the inner end in the namespace, the outer end read and written through a
    /// packet socket. Needs no device node, so it works in a user namespace without root.
    case veth

    public var description: String {
        switch self {
        case .tun: return "TUN devices"
        case .veth: return "veth pairs through packet sockets"
        }
    }

    /// TUN when /dev/net/tun opens (root, or a machine that allows everyone), else veth; with the
    /// reason for veth.
    public static func available() -> (device: LinkDevice, reason: String?) {
        let fd = open("/dev/net/tun", O_RDWR | O_CLOEXEC)
        guard fd < 0 else {
            close(fd)
            return (.tun, nil)
        }
        return (.veth, "/dev/net/tun: \(String(cString: strerror(errno)))")
    }
}
