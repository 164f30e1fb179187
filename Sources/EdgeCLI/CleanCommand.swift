import ArgumentParser
import EdgeSim

struct CleanCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "clean",
        abstract:
            "Remove what a crashed or killed run left behind: node processes without a runner, network namespaces of runs that are gone.",
        discussion: "A new run does this first by itself. Exit status 0 whether or not anything was found."
    )

    func run() throws {
        let removed = Leftovers.clean()
        if removed.isEmpty {
            say("nothing to clean")
        } else {
            for item in removed { say("removed \(item)") }
        }
    }
}
