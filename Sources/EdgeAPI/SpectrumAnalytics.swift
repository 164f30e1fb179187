import EdgeSim
import Foundation

/// One connection or flow event as analytics count it.
public struct AnalyticsEvent: Sendable, Hashable {
    public var event: String
    public var appID: String
    /// The edge node (Cloudflare's data center, its "colo").
    public var coloName: String
    public var ipVersion: Int
    public var bytesIngress: UInt64
    public var bytesEgress: UInt64
    public var durationMs: Double?
    /// Seconds since the epoch.
    public var time: Double

    public init(
        event: String, appID: String, coloName: String, ipVersion: Int, bytesIngress: UInt64, bytesEgress: UInt64, durationMs: Double?,
        time: Double
    ) {
        self.event = event
        self.appID = appID
        self.coloName = coloName
        self.ipVersion = ipVersion
        self.bytesIngress = bytesIngress
        self.bytesEgress = bytesEgress
        self.durationMs = durationMs
        self.time = time
    }

    func value(of dimension: AnalyticsQuery.Dimension) -> String {
        switch dimension {
        case .event: return event
        case .appID: return appID
        case .coloName: return coloName
        case .ipVersion: return "\(ipVersion)"
        }
    }
}

/// A Spectrum analytics query (`events/summary`, `events/bytime`): dimensions to group by,
/// metrics to compute, filters, a time range, sorting and a limit, read from query parameters
/// the way Cloudflare's API takes them.
public struct AnalyticsQuery: Sendable {
    public enum Dimension: String, Sendable, CaseIterable {
        case event, appID, coloName, ipVersion
    }

    public enum Metric: String, Sendable, CaseIterable {
        case count, bytesIngress, bytesEgress, durationAvg, durationMedian, duration90th, duration99th
    }

    public enum TimeDelta: String, Sendable, CaseIterable {
        case year, quarter, month, week, day, hour, dekaminute, minute

        var seconds: Double {
            switch self {
            case .minute: return 60
            case .dekaminute: return 600
            case .hour: return 3600
            case .day: return 86_400
            case .week: return 7 * 86_400
            case .month: return 30 * 86_400
            case .quarter: return 91 * 86_400
            case .year: return 365 * 86_400
            }
        }
    }

    public struct Filter: Sendable, Hashable {
        public enum Operator: String, Sendable, CaseIterable {
            case equal = "=="
            case notEqual = "!="
            case greaterOrEqual = ">="
            case lessOrEqual = "<="
            case greater = ">"
            case less = "<"
        }

        public var dimension: Dimension
        public var op: Operator
        public var value: String

        func matches(_ event: AnalyticsEvent) -> Bool {
            let actual = event.value(of: dimension)
            if let a = Double(actual), let b = Double(value) {
                switch op {
                case .equal: return a == b
                case .notEqual: return a != b
                case .greaterOrEqual: return a >= b
                case .lessOrEqual: return a <= b
                case .greater: return a > b
                case .less: return a < b
                }
            }
            switch op {
            case .equal: return actual == value
            case .notEqual: return actual != value
            case .greaterOrEqual: return actual >= value
            case .lessOrEqual: return actual <= value
            case .greater: return actual > value
            case .less: return actual < value
            }
        }
    }

    public struct QueryError: Error, CustomStringConvertible {
        public var description: String
    }

    public var dimensions: [Dimension] = []
    public var metrics: [Metric] = [.count, .bytesIngress, .bytesEgress]
    /// Any of these groups, each matching when all its filters do (AND before OR).
    public var filters: [[Filter]] = []
    public var filterText: String?
    public var since: Date
    public var until: Date
    /// Sort keys (a dimension or metric), `-` first for descending.
    public var sort: [String] = []
    public var limit = 10_000
    public var timeDelta: TimeDelta?

    /// From query parameters: `all(name)` gives every value of a repeated parameter.
    public init(all: (String) -> [String], now: Date = Date(), bytime: Bool = false) throws(QueryError) {
        func list(_ name: String) -> [String] {
            all(name).flatMap { $0.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) } }.filter { !$0.isEmpty }
        }
        for name in list("dimensions") {
            guard let dimension = Dimension(rawValue: name) else {
                throw QueryError(
                    description: "unknown dimension '\(name)'; known: \(Dimension.allCases.map(\.rawValue).joined(separator: ", "))")
            }
            dimensions.append(dimension)
        }
        let metricNames = list("metrics")
        if !metricNames.isEmpty {
            metrics = try metricNames.map { name throws(QueryError) in
                guard let metric = Metric(rawValue: name) else {
                    throw QueryError(
                        description: "unknown metric '\(name)'; known: \(Metric.allCases.map(\.rawValue).joined(separator: ", "))")
                }
                return metric
            }
        }
        func date(_ name: String) throws(QueryError) -> Date? {
            guard let text = all(name).first else { return nil }
            guard let date = Self.rfc3339(text) else { throw QueryError(description: "\(name) '\(text)' is not an RFC 3339 time") }
            return date
        }
        until = try date("until") ?? now
        since = try date("since") ?? until.addingTimeInterval(-6 * 3600)
        guard since <= until else { throw QueryError(description: "since is after until") }
        if let text = all("filters").first, !text.isEmpty {
            filterText = text
            filters = try Self.parseFilters(text)
        }
        sort = list("sort")
        for key in sort {
            let name = key.hasPrefix("-") || key.hasPrefix("+") ? String(key.dropFirst()) : key
            guard dimensions.map(\.rawValue).contains(name) || metrics.map(\.rawValue).contains(name) else {
                throw QueryError(description: "sort field '\(name)' must be one of the dimensions or metrics asked for")
            }
        }
        if let text = all("limit").first {
            guard let value = Int(text), value > 0 else { throw QueryError(description: "limit '\(text)' is not a positive number") }
            limit = value
        }
        if bytime {
            guard let text = all("time_delta").first else { throw QueryError(description: "time_delta is required") }
            guard let delta = TimeDelta(rawValue: text) else {
                throw QueryError(
                    description: "unknown time_delta '\(text)'; known: \(TimeDelta.allCases.map(\.rawValue).joined(separator: ", "))")
            }
            timeDelta = delta
        }
    }

    /// `a==b;c!=d,e==f`: `;` or ` AND ` binds tighter than `,` or ` OR `.
    static func parseFilters(_ text: String) throws(QueryError) -> [[Filter]] {
        let ors = text.replacingOccurrences(of: " OR ", with: ",").split(separator: ",")
        return try ors.map { group throws(QueryError) in
            try group.replacingOccurrences(of: " AND ", with: ";").split(separator: ";").map { term throws(QueryError) in
                let term = term.trimmingCharacters(in: .whitespaces)
                // Two-character operators first, so `>=` is not read as `>`.
                for op in Filter.Operator.allCases.sorted(by: { $0.rawValue.count > $1.rawValue.count }) {
                    guard let range = term.range(of: op.rawValue) else { continue }
                    let name = term[..<range.lowerBound].trimmingCharacters(in: .whitespaces)
                    guard let dimension = Dimension(rawValue: name) else {
                        throw QueryError(description: "filter '\(term)': unknown dimension '\(name)'")
                    }
                    return Filter(dimension: dimension, op: op, value: term[range.upperBound...].trimmingCharacters(in: .whitespaces))
                }
                throw QueryError(description: "filter '\(term)' has no comparison (==, !=, >, <, >=, <=)")
            }
        }
    }

    static func rfc3339(_ text: String) -> Date? {
        let formatter = ISO8601DateFormatter()
        formatter.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
        if let date = formatter.date(from: text) { return date }
        formatter.formatOptions = [.withInternetDateTime]
        return formatter.date(from: text)
    }

    static func format(_ date: Date) -> String {
        let formatter = ISO8601DateFormatter()
        formatter.formatOptions = [.withInternetDateTime]
        return formatter.string(from: date)
    }

    func selects(_ event: AnalyticsEvent) -> Bool {
        guard event.time >= since.timeIntervalSince1970, event.time <= until.timeIntervalSince1970 else { return false }
        return filters.isEmpty || filters.contains { group in group.allSatisfy { $0.matches(event) } }
    }

    // MARK: Results

    /// The `events/summary` result: one row per combination of the dimensions.
    public func summary(_ events: [AnalyticsEvent]) -> [String: Any] {
        let selected = events.filter(selects)
        var rows = grouped(selected).map { key, group in (key, metrics.map { value(of: $0, over: group) }) }
        rows = sorted(rows)
        let data = rows.prefix(limit).map { key, values -> [String: Any] in ["dimensions": key, "metrics": values] }
        return result(data: data, rows: min(rows.count, limit), selected: selected, extra: [:])
    }

    /// The `events/bytime` result: each row's metrics as one value per interval of `time_delta`.
    public func byTime(_ events: [AnalyticsEvent]) -> [String: Any] {
        let step = (timeDelta ?? .minute).seconds
        var intervals: [(Double, Double)] = []
        var start = since.timeIntervalSince1970
        let end = until.timeIntervalSince1970
        while start < end, intervals.count < 10_000 {
            intervals.append((start, min(end, start + step)))
            start += step
        }
        if intervals.isEmpty { intervals = [(start, end)] }
        let selected = events.filter(selects)
        var rows = grouped(selected).map { key, group in (key, metrics.map { value(of: $0, over: group) }) }
        rows = sorted(rows)
        let groups = grouped(selected)
        let data = rows.prefix(limit).map { key, _ -> [String: Any] in
            let group = groups[key] ?? []
            let series = metrics.map { metric in
                intervals.enumerated().map { index, interval in
                    let last = index == intervals.count - 1
                    return value(
                        of: metric, over: group.filter { $0.time >= interval.0 && ($0.time < interval.1 || last && $0.time <= interval.1) })
                }
            }
            return ["dimensions": key, "metrics": series]
        }
        let times = intervals.map { [Self.format(Date(timeIntervalSince1970: $0.0)), Self.format(Date(timeIntervalSince1970: $0.1))] }
        var query = self.queryObject()
        query["time_delta"] = (timeDelta ?? .minute).rawValue
        var result = result(data: data, rows: min(rows.count, limit), selected: selected, extra: ["time_intervals": times])
        result["query"] = query
        return result
    }

    private func grouped(_ events: [AnalyticsEvent]) -> [[String]: [AnalyticsEvent]] {
        Dictionary(grouping: events) { event in dimensions.map { event.value(of: $0) } }
    }

    private func sorted(_ rows: [([String], [Double])]) -> [([String], [Double])] {
        rows.sorted { a, b in
            for key in sort {
                let descending = key.hasPrefix("-")
                let name = key.hasPrefix("-") || key.hasPrefix("+") ? String(key.dropFirst()) : key
                if let index = metrics.firstIndex(where: { $0.rawValue == name }), a.1[index] != b.1[index] {
                    return descending ? a.1[index] > b.1[index] : a.1[index] < b.1[index]
                }
                if let index = dimensions.firstIndex(where: { $0.rawValue == name }), a.0[index] != b.0[index] {
                    return descending ? a.0[index] > b.0[index] : a.0[index] < b.0[index]
                }
            }
            return a.0.lexicographicallyPrecedes(b.0)
        }
    }

    private func result(data: [[String: Any]], rows: Int, selected: [AnalyticsEvent], extra: [String: Any]) -> [String: Any] {
        var totals: [String: Double] = [:]
        var minimum: [String: Double] = [:]
        var maximum: [String: Double] = [:]
        for metric in metrics {
            totals[metric.rawValue] = value(of: metric, over: selected)
            let values = data.compactMap { ($0["metrics"] as? [Double]).map { $0[metrics.firstIndex(of: metric)!] } }
            minimum[metric.rawValue] = values.min() ?? 0
            maximum[metric.rawValue] = values.max() ?? 0
        }
        var result: [String: Any] = [
            "data": data, "rows": rows, "data_lag": 0, "totals": totals, "min": minimum, "max": maximum, "query": queryObject(),
        ]
        result.merge(extra) { a, _ in a }
        return result
    }

    private func queryObject() -> [String: Any] {
        var query: [String: Any] = [
            "dimensions": dimensions.map(\.rawValue), "metrics": metrics.map(\.rawValue), "since": Self.format(since),
            "until": Self.format(until), "limit": limit,
        ]
        if !sort.isEmpty { query["sort"] = sort }
        if let filterText { query["filters"] = filterText }
        return query
    }

    func value(of metric: Metric, over events: [AnalyticsEvent]) -> Double {
        let durations = events.compactMap(\.durationMs).sorted()
        // Nearest rank.
        func percentile(_ p: Double) -> Double {
            guard !durations.isEmpty else { return 0 }
            let rank = max(1, Int((p * Double(durations.count)).rounded(.up)))
            return durations[min(durations.count, rank) - 1]
        }
        switch metric {
        case .count: return Double(events.count)
        case .bytesIngress: return Double(events.reduce(0) { $0 + $1.bytesIngress })
        case .bytesEgress: return Double(events.reduce(0) { $0 + $1.bytesEgress })
        case .durationAvg: return durations.isEmpty ? 0 : durations.reduce(0, +) / Double(durations.count)
        case .durationMedian: return percentile(0.5)
        case .duration90th: return percentile(0.9)
        case .duration99th: return percentile(0.99)
        }
    }
}

extension AnalyticsEvent {
    /// What analytics count of an event a node reported.
    public init(_ event: Fleet.NodeEvent) {
        self.init(
            event: event.event.rawValue, appID: event.app, coloName: event.node, ipVersion: event.ipVersion,
            bytesIngress: event.bytesIn, bytesEgress: event.bytesOut, durationMs: event.durationMs, time: event.time)
    }
}

/// `analytics/aggregate/current`: per application, connections open now and what the ones
/// that ended carried. `appIDs` and `colo` narrow it down (empty or nil: all).
public func currentAggregate(_ events: [AnalyticsEvent], appIDs: [String], colo: String?) -> [[String: Any]] {
    let chosen = events.filter { (appIDs.isEmpty || appIDs.contains($0.appID)) && (colo == nil || $0.coloName == colo) }
    return Dictionary(grouping: chosen, by: \.appID).sorted { $0.key < $1.key }.map { app, events in
        let opened = events.count { $0.event == "connect" }
        let closed = events.count { $0.event == "disconnect" }
        let durations = events.compactMap(\.durationMs)
        return [
            "appID": app, "connections": max(0, opened - closed), "bytesIngress": events.reduce(0) { $0 + $1.bytesIngress },
            "bytesEgress": events.reduce(0) { $0 + $1.bytesEgress },
            "durationAvg": durations.isEmpty ? 0 : durations.reduce(0, +) / Double(durations.count),
        ]
    }
}
