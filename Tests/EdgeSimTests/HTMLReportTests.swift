import Foundation
import Testing

@testable import EdgeSim

/// The HTML report: self-contained, every outside text escaped, one chart per traffic row and
/// kind, the timeline's rows in time order.
@Suite struct HTMLReportTests {
    func report() -> RunReport {
        var report = RunReport(scenario: "lab<script>", mode: "netns", outcome: .failed, started: 1_790_000_000, durationSeconds: 20)
        report.checks = [
            RunReport.Check(name: "success_rate echo", passed: true, measured: "100% (10/10)", expected: "at least 99%"),
            RunReport.Check(name: "served_by \"x\"", passed: false, measured: "ams 3 & lhr 7", expected: "<lhr>", detail: "more"),
        ]
        let times = [0.3, 0.9, 1, 40, 41, 3000]
        report.traffic = [
            RunReport.Traffic(
                app: "echo", client: "paris", transport: "tcp", attempted: 7, succeeded: 6, connectP50Ms: 1, connectP99Ms: 2,
                firstByteP50Ms: 40, firstByteP99Ms: 3000, errors: ["refused": 1], servedBy: ["lhr": 4, "ams": 2],
                firstByteHistogram: RunReport.histogram(times)),
            RunReport.Traffic(
                app: "udp", client: "madrid", transport: "udp", attempted: 1, succeeded: 0, errors: ["no reply": 1], servedBy: [:],
                firstByteHistogram: RunReport.histogram([])),
        ]
        report.timeline = [
            RunReport.TimelineEntry(at: 2, kind: "node", text: "node lhr: freeze"),
            RunReport.TimelineEntry(at: 0.1, kind: "traffic", text: "traffic: paris → echo"),
        ]
        report.nodeDowns = [RunReport.NodeDown(node: "lhr", at: 5, backAt: 9)]
        return report
    }

    @Test func bucketsCountEachValueOnce() {
        let counts = RunReport.histogram([0.3, 0.5, 0.51, 1, 2000, 2000.1, 9e9])
        #expect(counts.count == RunReport.histogramEdgesMs.count + 1)
        #expect(counts[0] == 2 && counts[1] == 2 && counts[RunReport.histogramEdgesMs.count - 1] == 1 && counts.last == 2)
        #expect(counts.reduce(0, +) == 7)
    }

    @Test func thePageIsSelfContainedAndEscapesEveryText() {
        let html = report().html()
        #expect(html.hasPrefix("<!DOCTYPE html>"))
        #expect(!html.contains("<script") && html.contains("lab&lt;script&gt;"))
        #expect(html.contains("served_by &quot;x&quot;") && html.contains("ams 3 &amp; lhr 7") && html.contains("&lt;lhr&gt;"))
        for outside in ["src=", "href=", "@import", "url("] { #expect(!html.contains(outside), "\(outside)") }
        #expect(html.contains("<span class=\"failed\">FAILED</span>"))
        #expect(html.components(separatedBy: "<tr class=\"fail\">").count - 1 == 1)
    }

    @Test func oneChartPerRowWithDataAndTheTimelineInOrder() {
        let html = report().html()
        // A histogram and a served-by bar for echo (udp had no answer, so neither), and the timeline.
        #expect(html.components(separatedBy: "<svg class=\"histogram\"").count - 1 == 1)
        #expect(html.components(separatedBy: "<svg class=\"served\"").count - 1 == 1)
        #expect(html.components(separatedBy: "<svg class=\"timeline\"").count - 1 == 1)
        #expect(html.contains("<title>lhr: 4</title>") && html.contains("<title>ams: 2</title>"))
        #expect(
            html.contains("<title>≤1 ms: 2</title>") && html.contains("<title>≤50 ms: 2</title>") && html.contains("<title>≤5000") == false)
        #expect(html.contains("<title>&gt;2000 ms: 1</title>"))
        let traffic = html.range(of: "0.1 s</td><td>traffic: paris → echo")
        let freeze = html.range(of: "2.0 s</td><td>node lhr: freeze")
        let down = html.range(of: "5.0 s</td><td>node lhr stopped answering (back at 9.0 s)")
        #expect(traffic != nil && freeze != nil && down != nil)
        if let traffic, let freeze, let down { #expect(traffic.lowerBound < freeze.lowerBound && freeze.lowerBound < down.lowerBound) }
        #expect(html.contains("<title>node lhr down 5.0–9.0 s</title>"), "a node down is a span")
    }
}
