import CEdgeNet
import Foundation

/// The two veth pairs of a link made of veth: the inner ends, both named like the link, sit in the
/// hosts' namespaces; the outer ends stay in the creating process's namespace, where packet
/// sockets read and write them. Both inner ends share one MAC address and do no ARP, so a frame
/// one sends is addressed to the other, as on a point-to-point TUN link.
struct VethEnds {
    let a: String
    let b: String
    let device: String
    let mac: String

    init(index: Int, device: String) {
        // At most 15 characters: "e" + a process id (7 digits at most) + "l" + the link's index + side.
        a = "e\(getpid())l\(index)a"
        b = "e\(getpid())l\(index)b"
        self.device = device
        let bytes = [0x02, 0xed, (index >> 24) & 0xff, (index >> 16) & 0xff, (index >> 8) & 0xff, index & 0xff]
        mac = bytes.map { String(format: "%02x", $0) }.joined(separator: ":")
    }

    struct Failure: Error, CustomStringConvertible {
        var description: String
    }

    func create(_ namespaceA: NetworkNamespace, _ namespaceB: NetworkNamespace) throws {
        do {
            try IPCommand.batch([
                "link add \(a) type veth peer name \(device) address \(mac) netns \(namespaceA.name) arp off",
                "link add \(b) type veth peer name \(device) address \(mac) netns \(namespaceB.name) arp off",
                // No link-local addresses: nothing but the hosts' own traffic crosses the link.
                "link set \(a) addrgenmode none", "link set \(b) addrgenmode none",
                "link set \(a) up", "link set \(b) up",
            ])
            for namespace in [namespaceA, namespaceB] {
                try IPCommand.batch(["link set \(device) addrgenmode none"], namespace: namespace.name)
                let result = cedgenet_whole_frames(namespace.path, device)
                guard result == 0 else {
                    throw Failure(
                        description:
                            "cannot turn off checksum offload on \(device) in \(namespace.name): \(String(cString: strerror(-result)))")
                }
            }
        } catch {
            delete()
            throw error
        }
    }

    /// Packet sockets on both outer ends, non-blocking.
    func open() throws -> (Int32, Int32) {
        let fdA = cedgenet_packet_open(a)
        guard fdA >= 0 else { throw Failure(description: "cannot open a packet socket on \(a): \(String(cString: strerror(-fdA)))") }
        let fdB = cedgenet_packet_open(b)
        guard fdB >= 0 else {
            close(fdA)
            throw Failure(description: "cannot open a packet socket on \(b): \(String(cString: strerror(-fdB)))")
        }
        return (fdA, fdB)
    }

    /// Deletes both pairs (an inner end goes with its outer end), going on past any already gone.
    func delete() {
        try? IPCommand.batch(["link delete \(a)", "link delete \(b)"])
    }
}
