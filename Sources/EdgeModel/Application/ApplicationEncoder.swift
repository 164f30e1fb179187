import Foundation

extension Application {
    /// The application as a Spectrum API object (the fields a file or an API body gives), for
    /// API responses and for handing an application to a node process. Reading it back gives the
    /// same application.
    public var spectrumObject: [String: Any] {
        var object: [String: Any] = [
            "id": id,
            "protocol": edge.description,
            "dns": ["type": dns.type.rawValue, "name": dns.name],
            "proxy_protocol": proxyProtocol.rawValue,
            "tls": tls.rawValue,
            "traffic_type": trafficType.rawValue,
            "ip_firewall": ipFirewall,
            "argo_smart_routing": smartRouting,
        ]
        switch edgeIPs {
        case .dynamic(let connectivity): object["edge_ips"] = ["type": "dynamic", "connectivity": connectivity.rawValue]
        case .static(let ips): object["edge_ips"] = ["type": "static", "ips": ips.map(\.description)]
        }
        switch origin {
        case .direct(let addresses):
            object["origin_direct"] = addresses.map(\.description)
        case .dns(let dns):
            var fields: [String: Any] = ["name": dns.name, "type": dns.type.rawValue]
            if let ttl = dns.ttl { fields["ttl"] = ttl }
            object["origin_dns"] = fields
            if let ports = dns.ports { object["origin_port"] = ports.isSingle ? Int(ports.first) as Any : ports.description }
        }
        let settings = tlsSettings
        if tls != .off {
            if let file = settings.certificateFile { object["tls_certificate"] = file }
            if let file = settings.keyFile { object["tls_key"] = file }
            object["min_tls_version"] = settings.minimumVersion.rawValue
            if let ciphers = settings.ciphers { object["tls_ciphers"] = ciphers }
        }
        if tls == .strict {
            if let file = settings.originCAFile { object["origin_ca"] = file }
            if let name = settings.originServerName { object["origin_server_name"] = name }
        }
        return object
    }

    /// `spectrumObject` as JSON bytes, keys sorted.
    public var spectrumJSON: [UInt8] {
        let data =
            (try? JSONSerialization.data(withJSONObject: spectrumObject, options: [.sortedKeys, .withoutEscapingSlashes]))
            ?? Data("{}".utf8)
        return Array(data)
    }
}
