import EdgeModel
import EdgeRouting
import Testing

/// Path choice from measurements alone: no sockets, no clock but the one the test turns.
@Suite struct PathChooserTests {
    static func ms(_ value: Double) -> PathMeasurement { PathMeasurement(rtt: .microseconds(Int64(value * 1000))) }

    /// Chennai to Seoul is 332 ms straight and 136 ms through Tokyo (the shared city table).
    @Test func aRelayThatIsFasterWins() {
        var chooser = PathChooser(entry: "maa")
        let local = ["seoul": Self.ms(332), "nrt": Self.ms(104), "sin": Self.ms(60)]
        let peers = ["nrt": ["seoul": Self.ms(32), "sin": Self.ms(70)], "sin": ["seoul": Self.ms(90), "nrt": Self.ms(70)]]
        let choice = chooser.choose("seoul", local: local, peers: peers)
        #expect(choice?.via == ["nrt"])
        #expect(choice?.rtt == .milliseconds(136))
    }

    @Test func twoRelaysWhenThatIsFastest() {
        var chooser = PathChooser(entry: "a")
        let local = ["o": Self.ms(300), "b": Self.ms(20), "c": Self.ms(200)]
        let peers = ["b": ["c": Self.ms(20), "o": Self.ms(250)], "c": ["o": Self.ms(20), "b": Self.ms(20)]]
        #expect(chooser.choose("o", local: local, peers: peers)?.via == ["b", "c"])
        var oneRelay = PathChooser(entry: "a")
        oneRelay.settings.maximumRelays = 1
        #expect(oneRelay.choose("o", local: local, peers: peers)?.via == ["c"])
    }

    @Test func directWhenNothingIsBetterOrNothingIsKnown() {
        var chooser = PathChooser(entry: "a")
        #expect(chooser.choose("o", local: ["o": Self.ms(50)], peers: [:])?.via == [])
        #expect(chooser.choose("o", local: ["o": Self.ms(50), "b": Self.ms(10)], peers: ["b": ["o": Self.ms(45)]])?.via == [])
        #expect(chooser.choose("x", local: [:], peers: [:]) == nil)
    }

    /// Noise smaller than the hysteresis keeps the route; a real improvement moves it.
    @Test func hysteresisKeepsTheRouteAgainstNoise() {
        var chooser = PathChooser(entry: "a")
        var local = ["o": Self.ms(100), "b": Self.ms(40)]
        var peers = ["b": ["o": Self.ms(50)]]
        #expect(chooser.choose("o", local: local, peers: peers)?.via == ["b"])
        local["o"] = Self.ms(89.5)  // 0.5 ms better than via b: within 1 ms / 2%
        #expect(chooser.choose("o", local: local, peers: peers)?.via == ["b"])
        local["o"] = Self.ms(80)
        #expect(chooser.choose("o", local: local, peers: peers)?.via == [])
        peers["b"]?["o"] = Self.ms(39.6)  // 79.6 vs 80: noise again
        #expect(chooser.choose("o", local: local, peers: peers)?.via == [])
    }

    /// A segment that stops answering drops its paths at once, whatever the hysteresis.
    @Test func aPathThatStopsAnsweringIsDroppedAtOnce() {
        var chooser = PathChooser(entry: "a")
        var local = ["o": Self.ms(100), "b": Self.ms(40), "c": Self.ms(45)]
        var peers = ["b": ["o": Self.ms(20)], "c": ["o": Self.ms(20)]]
        #expect(chooser.choose("o", local: local, peers: peers)?.via == ["b"])
        peers["b"]?["o"]?.answering = false
        #expect(chooser.choose("o", local: local, peers: peers)?.via == ["c"])
        local["c"]?.answering = false
        #expect(chooser.choose("o", local: local, peers: peers)?.via == [])
    }

    /// Loss makes a path dearer by what retransmissions cost.
    @Test func lossCountsAgainstAPath() {
        var chooser = PathChooser(entry: "a")
        let local = ["o": Self.ms(100), "b": PathMeasurement(rtt: .milliseconds(30), loss: 0.1)]
        let peers = ["b": ["o": Self.ms(30)]]
        let choice = chooser.choose("o", local: local, peers: peers)
        #expect(choice?.via == [])
    }

    @Test func theEstimatorSmoothsNoiseAndFollowsALevelShiftInTwoProbes() {
        var estimator = RTTEstimator()
        estimator.lost()
        #expect(estimator.measurement?.answering == false)
        #expect(estimator.measurement?.loss == 0, "no answer yet is not loss: the far end may not be up")
        for sample in [50.0, 50.5, 49.5, 50, 50.6, 49.4, 50] { estimator.answered(after: .microseconds(Int64(sample * 1000))) }
        let steady = estimator.measurement!.rtt
        #expect(abs(steady.milliseconds - 50) < 1)
        estimator.answered(after: .milliseconds(90))  // one late probe barely moves it
        #expect(abs(estimator.measurement!.rtt.milliseconds - steady.milliseconds) < 0.01)
        estimator.answered(after: .milliseconds(50))
        estimator.answered(after: .milliseconds(120))
        estimator.answered(after: .milliseconds(121))  // two in a row: the path changed
        #expect(abs(estimator.measurement!.rtt.milliseconds - 120.5) < 0.01)
        estimator.lost()
        #expect(estimator.measurement?.answering == false)
        #expect(estimator.measurement!.loss > 0)
        estimator.answered(after: .milliseconds(120))
        #expect(estimator.measurement?.answering == true)
    }
}

extension Duration {
    var milliseconds: Double { Double(components.seconds) * 1000 + Double(components.attoseconds) / 1e15 }
}
