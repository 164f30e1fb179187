import Foundation

/// An edge application: what the edge listens on and where it sends the traffic.
/// Field names in files follow the public Spectrum API.
public struct Application: Sendable, Hashable, Identifiable {
    public var id: String
    public var edge: EdgeListener
    public var dns: PublicName
    public var origin: Origin
    public var proxyProtocol: ProxyProtocolMode
    public var tls: TLSMode
    public var trafficType: TrafficType
    /// Certificates, versions and origin checks for `tls` other than off.
    public var tlsSettings: EdgeTLSSettings = EdgeTLSSettings()
    public var ipFirewall: Bool
    public var smartRouting: Bool
    public var edgeIPs: EdgeIPs
    /// Where the object was read from, for later messages.
    public var location: SourceLocation

    public init(
        id: String, edge: EdgeListener, dns: PublicName, origin: Origin,
        proxyProtocol: ProxyProtocolMode = .off, tls: TLSMode = .off, trafficType: TrafficType = .direct,
        ipFirewall: Bool = false, smartRouting: Bool = false, edgeIPs: EdgeIPs = .dynamic(.all),
        location: SourceLocation = SourceLocation(file: "")
    ) {
        self.id = id
        self.edge = edge
        self.dns = dns
        self.origin = origin
        self.proxyProtocol = proxyProtocol
        self.tls = tls
        self.trafficType = trafficType
        self.ipFirewall = ipFirewall
        self.smartRouting = smartRouting
        self.edgeIPs = edgeIPs
        self.location = location
    }
}

public enum Transport: String, Sendable, Hashable, CaseIterable {
    case tcp
    case udp
}

/// `protocol: tcp/22` or `udp/1000-2000`.
public struct EdgeListener: Sendable, Hashable, CustomStringConvertible {
    public var transport: Transport
    public var ports: PortRange

    public init(transport: Transport, ports: PortRange) {
        self.transport = transport
        self.ports = ports
    }

    public static func parse(_ text: String) -> Result<EdgeListener, ValueError> {
        let parts = text.split(separator: "/", maxSplits: 1)
        guard parts.count == 2, let transport = Transport(rawValue: parts[0].lowercased()) else {
            return .failure(ValueError("'\(text)' is not transport/port(s), e.g. tcp/22, udp/53 or tcp/1000-2000"))
        }
        return PortRange.parse(String(parts[1])).map { EdgeListener(transport: transport, ports: $0) }
    }

    public var description: String { "\(transport.rawValue)/\(ports)" }
}

/// The `dns` object: the public name users connect to.
public struct PublicName: Sendable, Hashable {
    public enum RecordType: String, Sendable, Hashable {
        case cname = "CNAME"
        case address = "ADDRESS"
    }

    public var type: RecordType
    public var name: String

    public init(type: RecordType, name: String) {
        self.type = type
        self.name = name
    }
}

/// Where traffic goes: fixed addresses, or a name resolved (and re-resolved) through DNS.
public enum Origin: Sendable, Hashable {
    case direct([OriginAddress])
    case dns(OriginDNS)
}

/// One `origin_direct` entry: `tcp://198.18.0.1:22`, `udp://[2001:db8::1]:53`,
/// `tcp://198.18.0.1:3000-4000`. Inside a scenario the host may name a topology origin.
public struct OriginAddress: Sendable, Hashable, CustomStringConvertible {
    public enum Host: Sendable, Hashable, CustomStringConvertible {
        case ip(IPAddress)
        /// A topology origin's name, resolved to its address when the fleet starts.
        case topologyHost(String)

        public var description: String {
            switch self {
            case .ip(let address): return address.bracketed
            case .topologyHost(let name): return name
            }
        }
    }

    public var transport: Transport
    public var host: Host
    public var ports: PortRange

    public init(transport: Transport, host: Host, ports: PortRange) {
        self.transport = transport
        self.host = host
        self.ports = ports
    }

    public static func parse(_ text: String) -> Result<OriginAddress, ValueError> {
        guard let schemeEnd = text.range(of: "://"),
            let transport = Transport(rawValue: text[..<schemeEnd.lowerBound].lowercased())
        else {
            return .failure(ValueError("'\(text)' must look like tcp://198.18.0.1:22 or udp://[2001:db8::1]:53"))
        }
        let rest = text[schemeEnd.upperBound...]
        let hostText: Substring
        let portText: Substring
        if rest.hasPrefix("[") {
            guard let close = rest.firstIndex(of: "]"), rest[rest.index(after: close)...].hasPrefix(":") else {
                return .failure(ValueError("'\(text)' has an unclosed '[' or no port after ']'"))
            }
            hostText = rest[rest.index(after: rest.startIndex)..<close]
            portText = rest[rest.index(close, offsetBy: 2)...]
            guard hostText.contains(":"), let address = IPAddress(hostText) else {
                return .failure(ValueError("'\(hostText)' in brackets is not an IPv6 address"))
            }
            return PortRange.parse(String(portText)).map { OriginAddress(transport: transport, host: .ip(address), ports: $0) }
        }
        guard let colon = rest.lastIndex(of: ":") else {
            return .failure(ValueError("'\(text)' has no port (e.g. tcp://198.18.0.1:22)"))
        }
        hostText = rest[..<colon]
        portText = rest[rest.index(after: colon)...]
        if hostText.contains(":") {
            return .failure(ValueError("IPv6 origin '\(hostText)' must be in brackets: \(transport.rawValue)://[\(hostText)]:\(portText)"))
        }
        let host: Host
        if let address = IPAddress(hostText) {
            host = .ip(address)
        } else if hostText.allSatisfy({ $0.isNumber || $0 == "." }) {
            return .failure(ValueError("'\(hostText)' is not a valid IPv4 address"))
        } else if case .success(let name) = HostName.normalize(String(hostText)) {
            host = .topologyHost(name)
        } else {
            return .failure(ValueError("'\(hostText)' is not an IP address"))
        }
        return PortRange.parse(String(portText)).map { OriginAddress(transport: transport, host: host, ports: $0) }
    }

    public var description: String { "\(transport.rawValue)://\(host):\(ports)" }
}

/// `origin_dns`: the origin is found by resolving a name, again each time the TTL runs out.
public struct OriginDNS: Sendable, Hashable {
    public enum RecordType: String, Sendable, Hashable {
        /// `""`: both A and AAAA.
        case addresses = ""
        case a = "A"
        case aaaa = "AAAA"
        case srv = "SRV"
    }

    public var name: String
    /// Seconds; nil means the TTL of the answer.
    public var ttl: Int?
    public var type: RecordType
    /// Required except for SRV, whose records carry the port.
    public var ports: PortRange?

    public init(name: String, ttl: Int? = nil, type: RecordType = .addresses, ports: PortRange?) {
        self.name = name
        self.ttl = ttl
        self.type = type
        self.ports = ports
    }
}

public enum ProxyProtocolMode: String, Sendable, Hashable, CaseIterable {
    case off
    case v1
    case v2
    /// Simple Proxy Protocol: a 38-byte header on every UDP datagram.
    case simple
}

public enum TLSMode: String, Sendable, Hashable, CaseIterable {
    case off
    case flexible
    case full
    case strict
}

public enum TrafficType: String, Sendable, Hashable, CaseIterable {
    case direct
    case http
    case https
}

/// Which edge addresses the application gets.
public enum EdgeIPs: Sendable, Hashable {
    public enum Connectivity: String, Sendable, Hashable, CaseIterable {
        case all
        case ipv4
        case ipv6
    }

    /// Addresses from the topology's pools, rotating over time.
    case dynamic(Connectivity)
    /// Fixed addresses.
    case `static`([IPAddress])
}
