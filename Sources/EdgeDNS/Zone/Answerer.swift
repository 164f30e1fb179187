/// Answers one query from a set of zones, as an authoritative server: AA on every answer,
/// NXDOMAIN versus NODATA with the SOA in the authority section, REFUSED outside its zones.
/// Pure logic: the servers around it only move bytes.
public enum Answerer {
    /// Largest UDP payload this server offers in its own OPT record.
    public static let udpPayloadSize: UInt16 = 1232
    static let maxCNAMEChain = 8

    /// The response, or nil when the message must be dropped (it is itself a response).
    public static func answer(_ query: DNSMessage, zones: [Zone]) -> DNSMessage? {
        guard !query.isResponse else { return nil }
        var response = DNSMessage(
            id: query.id, isResponse: true, opcode: query.opcode, recursionDesired: query.recursionDesired,
            questions: query.questions, edns: query.edns.map { _ in EDNS(udpPayloadSize: udpPayloadSize) })
        guard query.opcode == 0 else {
            response.responseCode = .notImplemented
            return response
        }
        guard query.questions.count == 1, let question = query.questions.first else {
            response.responseCode = .formatError
            response.questions = []
            return response
        }
        func bestZone(for name: DNSName) -> Zone? {
            var best: Zone?
            for zone in zones where name.isSubdomain(of: zone.apex) {
                if best.map({ $0.apex.wireLabels.count < zone.apex.wireLabels.count }) ?? true { best = zone }
            }
            return best
        }
        guard question.recordClass == 1 || question.recordClass == 255, var zone = bestZone(for: question.name) else {
            response.responseCode = .refused
            return response
        }
        response.authoritative = true
        var name = question.name
        var chain = 0
        while true {
            let owned = zone.records(at: name)
            if question.type != .cname, question.type != .any, let alias = owned.first(where: { $0.type == .cname }),
                case .cname(let target) = alias.data
            {
                response.answers.append(alias)
                chain += 1
                // The chain is followed through every zone served here; beyond them the client resolves on.
                guard chain < maxCNAMEChain, let next = bestZone(for: target) else { return response }
                zone = next
                name = target
                continue
            }
            let matching = owned.filter { question.type == .any || $0.type == question.type }
            if !matching.isEmpty {
                response.answers += matching
            } else {
                // RFC 6604: after a CNAME the code speaks of the last name in the chain.
                if !zone.exists(name) { response.responseCode = .nameError }
                var soa = zone.soaRecord
                soa.ttl = min(zone.soa.minimum, zone.ttl)
                response.authorities = [soa]
            }
            return response
        }
    }
}
