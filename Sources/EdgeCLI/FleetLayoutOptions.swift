import ArgumentParser

/// How `run` and `up` lay a fleet's edge nodes out over processes.
struct FleetLayoutOptions: ParsableArguments {
    @Option(
        help:
            "Edge nodes each node-host process holds (default: 1 for fleets of up to 32 nodes, each a process of its own; 64 beyond).")
    var nodesPerProcess: Int?

    func validate() throws {
        if let nodesPerProcess, !(1...1000).contains(nodesPerProcess) {
            throw ValidationError("--nodes-per-process must be between 1 and 1000")
        }
    }
}
