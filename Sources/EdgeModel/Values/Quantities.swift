/// Readers for the units used in topologies and scenarios: durations, rates, sizes, percentages.
public enum Quantity {
    /// `250ms`, `1.5s`, `2m`, `1h`, `1m30s`, `100us`, `0s`. A bare number needs a unit.
    public static func duration(_ text: String) -> Result<Duration, ValueError> {
        let units: [(String, Double)] = [
            ("ms", 1e-3), ("us", 1e-6), ("µs", 1e-6), ("ns", 1e-9), ("s", 1), ("m", 60), ("h", 3600),
        ]
        var rest = Substring(text.trimmingSpaces)
        var seconds = 0.0
        guard !rest.isEmpty else { return .failure(ValueError("a duration is empty")) }
        while !rest.isEmpty {
            let number = rest.prefix { $0.isNumber || $0 == "." }
            guard let value = Double(number) else {
                return .failure(ValueError("'\(text)' is not a duration (e.g. 250ms, 30s, 2m, 1m30s)"))
            }
            rest = rest.dropFirst(number.count)
            guard let unit = units.first(where: { rest.hasPrefix($0.0) }) else {
                let hint = rest.isEmpty ? "needs a unit" : "has an unknown unit '\(rest)'"
                return .failure(ValueError("'\(text)' \(hint) (ms, s, m or h, e.g. 30s)"))
            }
            rest = rest.dropFirst(unit.0.count)
            seconds += value * unit.1
        }
        guard seconds.isFinite, seconds < 366 * 86400 else {
            return .failure(ValueError("'\(text)' is longer than a year"))
        }
        return .success(.nanoseconds(Int64((seconds * 1e9).rounded())))
    }

    /// Bits per second from `100mbit`, `1gbit`, `512kbit`, `10Mbps`, `1Gbps`, `800bit`.
    public static func bitRate(_ text: String) -> Result<UInt64, ValueError> {
        let units: [(String, Double)] = [
            ("gbit", 1e9), ("mbit", 1e6), ("kbit", 1e3), ("bit", 1),
            ("gbps", 1e9), ("mbps", 1e6), ("kbps", 1e3), ("bps", 1),
        ]
        return scaled(text, units: units, example: "100mbit or 1gbit").flatMap { value in
            value >= 1 ? .success(UInt64(value)) : .failure(ValueError("a bandwidth must be at least 1 bit/s"))
        }
    }

    /// Bytes from `512`, `64KiB`, `10MiB`, `1GiB`, `10KB`, `5MB`.
    public static func byteCount(_ text: String) -> Result<UInt64, ValueError> {
        let units: [(String, Double)] = [
            ("gib", 1_073_741_824), ("mib", 1_048_576), ("kib", 1024),
            ("gb", 1e9), ("mb", 1e6), ("kb", 1e3), ("b", 1), ("", 1),
        ]
        return scaled(text, units: units, example: "512, 64KiB or 10MB").map { UInt64($0) }
    }

    /// A fraction 0...1 from `0.5%`, `100%`.
    public static func percentage(_ text: String) -> Result<Double, ValueError> {
        let trimmed = text.trimmingSpaces
        guard trimmed.hasSuffix("%"), let value = Double(trimmed.dropLast()) else {
            return .failure(ValueError("'\(text)' is not a percentage (e.g. 0.5%)"))
        }
        guard (0...100).contains(value) else {
            return .failure(ValueError("'\(text)' is outside 0%-100%"))
        }
        return .success(value / 100)
    }

    /// Events per second from `50/s`, `300/m`, `10/ms`.
    public static func rate(_ text: String) -> Result<Double, ValueError> {
        let parts = text.trimmingSpaces.split(separator: "/")
        guard parts.count == 2, let count = Double(parts[0]), count > 0, count.isFinite else {
            return .failure(ValueError("'\(text)' is not a rate (e.g. 50/s or 300/m)"))
        }
        let per: [String: Double] = ["s": 1, "ms": 1e-3, "m": 60, "h": 3600]
        guard let window = per[String(parts[1])] else {
            return .failure(ValueError("'\(text)' has an unknown time unit (s, ms, m or h)"))
        }
        return .success(count / window)
    }

    private static func scaled(_ text: String, units: [(String, Double)], example: String) -> Result<Double, ValueError> {
        let trimmed = text.trimmingSpaces
        let number = trimmed.prefix { $0.isNumber || $0 == "." }
        let unit = trimmed.dropFirst(number.count).lowercased()
        guard let value = Double(number), let scale = units.first(where: { $0.0 == unit })?.1 else {
            return .failure(ValueError("'\(text)' is not a quantity like \(example)"))
        }
        let result = value * scale
        guard result.isFinite, result < 1e18 else { return .failure(ValueError("'\(text)' is too large")) }
        return .success(result)
    }
}

extension String {
    var trimmingSpaces: String {
        String(drop { $0 == " " }.reversed().drop { $0 == " " }.reversed())
    }
}

extension Duration {
    /// Seconds as a `Double`, for reports and arithmetic.
    public var seconds: Double {
        let parts = components
        return Double(parts.seconds) + Double(parts.attoseconds) / 1e18
    }

    /// `250ms`, `1.5s`: the form the files use.
    public var formatted: String {
        let value = seconds
        if value == 0 { return "0s" }
        if value < 1 { return "\(trim(value * 1000))ms" }
        return "\(trim(value))s"
    }

    private func trim(_ value: Double) -> String {
        let rounded = (value * 1000).rounded() / 1000
        return rounded == rounded.rounded() ? String(Int(rounded)) : String(rounded)
    }
}

/// DNS host names: labels of letters, digits, `-` and `_`, each 1-63 bytes, 253 in all.
public enum HostName {
    /// Lower-cased, without a trailing dot, or an error saying what is wrong.
    public static func normalize(_ text: String) -> Result<String, ValueError> {
        var name = text.lowercased()
        if name.hasSuffix(".") { name.removeLast() }
        guard !name.isEmpty else { return .failure(ValueError("a host name is empty")) }
        guard name.utf8.count <= 253 else {
            return .failure(ValueError("'\(text.prefix(40))...' is longer than 253 bytes"))
        }
        for label in name.split(separator: ".", omittingEmptySubsequences: false) {
            guard (1...63).contains(label.utf8.count) else {
                return .failure(ValueError("'\(text)' has a label that is empty or longer than 63 bytes"))
            }
            guard label.utf8.allSatisfy({ isAlnum($0) || $0 == UInt8(ascii: "-") || $0 == UInt8(ascii: "_") }),
                label.first != "-", label.last != "-"
            else {
                return .failure(ValueError("'\(text)' is not a valid host name (letters, digits and '-' only)"))
            }
        }
        return .success(name)
    }

    private static func isAlnum(_ byte: UInt8) -> Bool {
        (UInt8(ascii: "a")...UInt8(ascii: "z")).contains(byte) || (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(byte)
    }
}
