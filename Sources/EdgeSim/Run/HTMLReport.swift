import Foundation

extension RunReport {
    /// The report as one self-contained HTML page (no script, no file or font from elsewhere):
    /// the outcome, the checks, traffic with a histogram of time to first byte and the nodes
    /// that served it per application and client, and the timeline of steps, rotations and
    /// node downs and exits as SVG charts.
    public func html() -> String {
        var page = HTMLPage()
        page.add("<h1>Scenario \(e(scenario)) <span class=\"\(outcome.rawValue)\">\(outcome.rawValue.uppercased())</span></h1>")
        let start = ISO8601DateFormatter().string(from: Date(timeIntervalSince1970: started))
        page.add("<p class=\"meta\">\(e(mode)) mode · started \(e(start)) · \(String(format: "%.1f", durationSeconds)) s</p>")

        page.add("<h2>Checks</h2>")
        if checks.isEmpty {
            page.add("<p>No checks were made.</p>")
        } else {
            page.add("<table class=\"checks\"><tr><th></th><th>check</th><th>measured</th><th>expected</th></tr>")
            for check in checks {
                let detail = check.detail.map { "<div class=\"detail\">\(e($0))</div>" } ?? ""
                page.add(
                    "<tr class=\"\(check.passed ? "pass" : "fail")\"><td>\(check.passed ? "PASS" : "FAIL")</td><td>\(e(check.name))</td><td>\(e(check.measured))\(detail)</td><td>\(e(check.expected))</td></tr>"
                )
            }
            page.add("</table>")
        }

        if !traffic.isEmpty {
            page.add("<h2>Traffic</h2>")
            page.add(
                "<table><tr><th>application</th><th>client</th><th></th><th>succeeded</th><th>connect p50 / p99 ms</th><th>first byte p50 / p99 ms</th><th>errors</th></tr>"
            )
            for row in traffic {
                let errors = row.errors.sorted { $0.value > $1.value }.map { "\($0.value)× \($0.key)" }.joined(separator: "; ")
                page.add(
                    "<tr><td>\(e(row.app))</td><td>\(e(row.client))</td><td>\(e(row.transport))</td><td>\(row.succeeded) / \(row.attempted)</td><td>\(ms(row.connectP50Ms)) / \(ms(row.connectP99Ms))</td><td>\(ms(row.firstByteP50Ms)) / \(ms(row.firstByteP99Ms))</td><td>\(e(errors))</td></tr>"
                )
            }
            page.add("</table>")
            page.add("<h2>Time to first byte</h2><div class=\"charts\">")
            for row in traffic where row.firstByteHistogram.contains(where: { $0 > 0 }) {
                page.add(histogramChart(row))
            }
            page.add("</div><h2>Served by</h2><div class=\"charts\">")
            let nodes = Set(traffic.flatMap { $0.servedBy.keys }).sorted()
            for row in traffic where !row.servedBy.isEmpty {
                page.add(servedChart(row, palette: nodes))
            }
            page.add("</div>")
        }

        page.add("<h2>Timeline</h2>")
        page.add(timelineChart())
        let rows =
            timeline.map { ($0.at, $0.text) }
            + rotations.map { ($0.publishedAt, "rotated \($0.app): \($0.old.joined(separator: ", ")) → \($0.new.joined(separator: ", "))") }
            + nodeDowns.map {
                ($0.at, "node \($0.node) stopped answering" + ($0.backAt.map { String(format: " (back at %.1f s)", $0) } ?? ""))
            }
            + nodeExits.map { ($0.at, "node \($0.node) exited with status \($0.status)" + ($0.expected ? " (as the timeline asked)" : "")) }
        if !rows.isEmpty {
            page.add("<table class=\"timeline\">")
            for (at, text) in rows.sorted(by: { $0.0 < $1.0 }) {
                page.add("<tr><td>\(String(format: "%.1f s", at))</td><td>\(e(text))</td></tr>")
            }
            page.add("</table>")
        }

        if !replays.isEmpty {
            page.add(
                "<h2>Replayed captures</h2><table><tr><th>step</th><th>capture</th><th>client</th><th>flows</th><th>succeeded</th><th>mismatched</th></tr>"
            )
            for replay in replays {
                page.add(
                    "<tr><td>\(replay.step)</td><td>\(e(replay.capture))</td><td>\(e(replay.client))</td><td>\(replay.flows)</td><td>\(replay.succeeded)</td><td>\(replay.mismatched)</td></tr>"
                )
            }
            page.add("</table>")
        }
        if !notes.isEmpty {
            page.add("<h2>Notes</h2><ul>" + notes.map { "<li>\(e($0))</li>" }.joined() + "</ul>")
        }
        return page.document(title: "edgesim: \(scenario) (\(mode)) \(outcome.rawValue)")
    }

    private func ms(_ value: Double?) -> String { value.map { String(format: "%.2f", $0) } ?? "-" }

    /// Bars for the buckets of time to first byte, labelled by their upper bounds.
    private func histogramChart(_ row: Traffic) -> String {
        let counts = row.firstByteHistogram
        let width = 580.0
        let height = 180.0
        let barWidth = (width - 40) / Double(counts.count)
        let most = Double(counts.max() ?? 1)
        var svg =
            "<figure><svg class=\"histogram\" width=\"\(Int(width))\" height=\"\(Int(height))\" viewBox=\"0 0 \(Int(width)) \(Int(height))\" role=\"img\" aria-label=\"time to first byte, \(e(row.app)) from \(e(row.client))\">"
        for (index, count) in counts.enumerated() {
            let barHeight = most > 0 ? Double(count) / most * (height - 50) : 0
            let x = 30 + Double(index) * barWidth
            let label = e(
                index < Self.histogramEdgesMs.count ? "≤\(number(Self.histogramEdgesMs[index]))" : ">\(number(Self.histogramEdgesMs.last!))"
            )
            svg +=
                "<rect x=\"\(f(x + 2))\" y=\"\(f(height - 30 - barHeight))\" width=\"\(f(barWidth - 4))\" height=\"\(f(barHeight))\"><title>\(label) ms: \(count)</title></rect>"
            if count > 0 { svg += "<text x=\"\(f(x + barWidth / 2))\" y=\"\(f(height - 34 - barHeight))\" class=\"count\">\(count)</text>" }
            svg += "<text x=\"\(f(x + barWidth / 2))\" y=\"\(f(height - 14))\" class=\"axis\">\(label)</text>"
        }
        svg += "<text x=\"\(f(width - 4))\" y=\"\(f(height - 2))\" class=\"unit\">ms</text></svg>"
        return svg + "<figcaption>\(e(row.app)) from \(e(row.client))</figcaption></figure>"
    }

    /// One bar split by the nodes that served the row's connections.
    private func servedChart(_ row: Traffic, palette: [String]) -> String {
        let width = 460.0
        let total = Double(row.servedBy.values.reduce(0, +))
        var svg =
            "<figure><svg class=\"served\" width=\"\(Int(width))\" height=\"60\" viewBox=\"0 0 \(Int(width)) 60\" role=\"img\" aria-label=\"served by, \(e(row.app)) from \(e(row.client))\">"
        var x = 0.0
        for (node, count) in row.servedBy.sorted(by: { $0.key < $1.key }) {
            let share = Double(count) / total * width
            let color = Self.colors[(palette.firstIndex(of: node) ?? 0) % Self.colors.count]
            svg +=
                "<rect x=\"\(f(x))\" y=\"4\" width=\"\(f(share))\" height=\"28\" fill=\"\(color)\"><title>\(e(node)): \(count)</title></rect>"
            if share > 40 { svg += "<text x=\"\(f(x + share / 2))\" y=\"52\" class=\"axis\">\(e(node)) \(count)</text>" }
            x += share
        }
        return svg + "</svg><figcaption>\(e(row.app)) from \(e(row.client))</figcaption></figure>"
    }

    /// Seconds across; steps, rotations and node exits as marks, node downs as spans.
    private func timelineChart() -> String {
        let width = 900.0
        let left = 90.0
        let span = max(durationSeconds, 1)
        let lanes: [(String, [(Double, Double?, String)])] = [
            ("steps", timeline.map { ($0.at, nil, $0.text) }),
            ("rotations", rotations.map { ($0.publishedAt, $0.retiredAt, "rotated \($0.app)") }),
            ("node downs", nodeDowns.map { ($0.at, $0.backAt ?? span, "node \($0.node) down") }),
            ("node exits", nodeExits.map { ($0.at, nil, "node \($0.node) exited (\($0.status))") }),
        ]
        let height = Double(lanes.count) * 32 + 30
        func x(_ seconds: Double) -> Double { left + min(max(seconds, 0), span) / span * (width - left - 10) }
        var svg =
            "<svg class=\"timeline\" width=\"\(Int(width))\" height=\"\(Int(height))\" viewBox=\"0 0 \(Int(width)) \(Int(height))\" role=\"img\" aria-label=\"timeline\">"
        for (index, lane) in lanes.enumerated() {
            let y = Double(index) * 32 + 10
            svg += "<text x=\"0\" y=\"\(f(y + 14))\" class=\"lane\">\(lane.0)</text>"
            svg += "<line x1=\"\(f(left))\" y1=\"\(f(y + 10))\" x2=\"\(f(width - 10))\" y2=\"\(f(y + 10))\" class=\"lane\"/>"
            for (from, to, label) in lane.1 {
                if let to, to > from {
                    svg +=
                        "<rect x=\"\(f(x(from)))\" y=\"\(f(y + 2))\" width=\"\(f(max(x(to) - x(from), 2)))\" height=\"16\" class=\"span\"><title>\(e(label)) \(String(format: "%.1f–%.1f s", from, to))</title></rect>"
                } else {
                    svg +=
                        "<circle cx=\"\(f(x(from)))\" cy=\"\(f(y + 10))\" r=\"5\" class=\"mark\"><title>\(e(label)) at \(String(format: "%.1f s", from))</title></circle>"
                }
            }
        }
        let axisY = Double(lanes.count) * 32 + 24
        for tick in 0...5 {
            let seconds = span * Double(tick) / 5
            svg += "<text x=\"\(f(x(seconds)))\" y=\"\(f(axisY))\" class=\"axis\">\(String(format: "%.1f s", seconds))</text>"
        }
        return svg + "</svg>"
    }

    static let colors = ["#4e79a7", "#f28e2b", "#59a14f", "#e15759", "#76b7b2", "#edc948", "#b07aa1", "#ff9da7", "#9c755f", "#bab0ac"]

    private func f(_ value: Double) -> String { String(format: "%.1f", value) }
    private func number(_ value: Double) -> String { value == value.rounded() ? String(Int(value)) : String(value) }
    private func e(_ text: String) -> String { HTMLPage.escape(text) }
}

/// A page built in pieces, with the style every report uses.
struct HTMLPage {
    private var body: [String] = []

    mutating func add(_ html: String) { body.append(html) }

    func document(title: String) -> String {
        """
        <!DOCTYPE html>
        <html lang="en">
        <head>
        <meta charset="utf-8">
        <meta name="viewport" content="width=device-width, initial-scale=1">
        <title>\(Self.escape(title))</title>
        <style>
        body { font-family: system-ui, sans-serif; margin: 2em; color: #222; max-width: 1000px; }
        h1 span { font-size: 0.6em; padding: 0.2em 0.5em; border-radius: 4px; color: white; vertical-align: middle; }
        .passed { background: #2e7d32; } .failed { background: #c62828; } .interrupted, .error { background: #6d4c41; }
        .meta { color: #666; }
        table { border-collapse: collapse; margin: 0.5em 0 1.5em; }
        th, td { text-align: left; padding: 0.25em 0.75em; border-bottom: 1px solid #ddd; vertical-align: top; }
        tr.pass td:first-child { color: #2e7d32; font-weight: bold; } tr.fail td:first-child { color: #c62828; font-weight: bold; }
        .detail { color: #666; font-size: 0.9em; }
        .charts { display: flex; flex-wrap: wrap; gap: 1em; }
        figure { margin: 0; } figcaption { color: #444; font-size: 0.9em; }
        svg text { font-size: 10px; fill: #444; } svg text.axis, svg text.count { text-anchor: middle; } svg text.unit { text-anchor: end; }
        svg.histogram rect { fill: #4e79a7; }
        svg.timeline line.lane { stroke: #ccc; } svg.timeline .mark { fill: #f28e2b; } svg.timeline .span { fill: #e15759; opacity: 0.7; }
        svg text.lane { font-size: 11px; }
        </style>
        </head>
        <body>
        \(body.joined(separator: "\n"))
        </body>
        </html>

        """
    }

    static func escape(_ text: String) -> String {
        var out = ""
        out.reserveCapacity(text.utf8.count)
        for character in text {
            switch character {
            case "&": out += "&amp;"
            case "<": out += "&lt;"
            case ">": out += "&gt;"
            case "\"": out += "&quot;"
            case "'": out += "&#39;"
            default: out.append(character)
            }
        }
        return out
    }
}
