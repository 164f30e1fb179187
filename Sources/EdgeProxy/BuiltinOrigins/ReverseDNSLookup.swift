import EdgeDNS
import EdgeModel

/// Looks up an address's reverse DNS the way a mail server does: its PTR names, then each
/// name's A (or AAAA) records to see whether one points back to the address.
public struct ReverseDNSLookup: Sendable {
    let client: DNSClient

    public init(client: DNSClient) {
        self.client = client
    }

    public func lookUp(_ address: IPAddress) async -> ReverseDNS {
        let address = address.unmapped
        do {
            let reply = try await client.query(.reverse(of: address), .ptr)
            guard reply.responseCode == .noError || reply.responseCode == .nameError else {
                return .failed("the server answered \(reply.responseCode)")
            }
            let names = reply.answers.compactMap { record -> DNSName? in
                if case .ptr(let name) = record.data { return name }
                return nil
            }
            guard !names.isEmpty else { return .none }
            var confirmed = false
            for name in names where !confirmed {
                let forward = try await client.query(name, address.isIPv4 ? .a : .aaaa)
                confirmed = forward.answers.contains { record in
                    switch record.data {
                    case .a(let found), .aaaa(let found): return found == address
                    default: return false
                    }
                }
            }
            return .found(names: names.map { $0.text }, confirmed: confirmed)
        } catch {
            return .failed("\(error)")
        }
    }
}
