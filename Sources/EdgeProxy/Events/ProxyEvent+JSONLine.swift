import EdgeModel

extension ProxyEvent {
    /// The event as one JSON line (keys sorted, as `JSONEncoder` with `.sortedKeys` writes them,
    /// and decoding to the same values), appended to `line`. Written by hand: on a busy node the
    /// event writer encodes one per connection, and the generic encoder costs several times more.
    public func appendJSONLine(to line: inout [UInt8]) {
        line.append(UInt8(ascii: "{"))
        var first = true
        func key(_ name: StaticString) {
            if !first { line.append(UInt8(ascii: ",")) }
            first = false
            line.append(UInt8(ascii: "\""))
            line.append(contentsOf: UnsafeBufferPointer(start: name.utf8Start, count: name.utf8CodeUnitCount))
            line.append(contentsOf: [UInt8(ascii: "\""), UInt8(ascii: ":")])
        }
        func string(_ value: String) {
            line.append(UInt8(ascii: "\""))
            for byte in value.utf8 {
                switch byte {
                case UInt8(ascii: "\""): line.append(contentsOf: [UInt8(ascii: "\\"), UInt8(ascii: "\"")])
                case UInt8(ascii: "\\"): line.append(contentsOf: [UInt8(ascii: "\\"), UInt8(ascii: "\\")])
                case 0x0A: line.append(contentsOf: [UInt8(ascii: "\\"), UInt8(ascii: "n")])
                case 0x0D: line.append(contentsOf: [UInt8(ascii: "\\"), UInt8(ascii: "r")])
                case 0x09: line.append(contentsOf: [UInt8(ascii: "\\"), UInt8(ascii: "t")])
                case 0..<0x20:
                    let hex = Array("0123456789abcdef".utf8)
                    line.append(contentsOf: Array("\\u00".utf8))
                    line.append(contentsOf: [hex[Int(byte >> 4)], hex[Int(byte & 0x0F)]])
                default: line.append(byte)
                }
            }
            line.append(UInt8(ascii: "\""))
        }
        func number(_ value: some BinaryInteger) { line.append(contentsOf: String(value).utf8) }
        func number(_ value: Double) { line.append(contentsOf: (value.isFinite ? "\(value)" : "0").utf8) }

        // In sorted order of the keys.
        key("app")
        string(app)
        key("bytesIn")
        number(bytesIn)
        key("bytesOut")
        number(bytesOut)
        key("clientIP")
        string(clientIP)
        key("clientPort")
        number(clientPort)
        if let durationMs {
            key("durationMs")
            number(durationMs)
        }
        key("edge")
        string(edge)
        key("event")
        string(event.rawValue)
        if let firstByteMs {
            key("firstByteMs")
            number(firstByteMs)
        }
        key("ipVersion")
        number(ipVersion)
        if let message {
            key("message")
            string(message)
        }
        key("node")
        string(node)
        if let origin {
            key("origin")
            string(origin)
        }
        if let originRTTMs {
            key("originRTTMs")
            number(originRTTMs)
        }
        key("proxyProtocol")
        string(proxyProtocol.rawValue)
        if let readsHeld {
            key("readsHeld")
            number(readsHeld)
        }
        key("status")
        number(status)
        key("time")
        number(time)
        key("tls")
        string(tls.rawValue)
        key("transport")
        string(transport.rawValue)
        if let via {
            key("via")
            line.append(UInt8(ascii: "["))
            for (index, hop) in via.enumerated() {
                if index > 0 { line.append(UInt8(ascii: ",")) }
                string(hop)
            }
            line.append(UInt8(ascii: "]"))
        }
        line.append(contentsOf: [UInt8(ascii: "}"), 0x0A])
    }
}
