// swift-tools-version:6.1
import PackageDescription

// libFuzzer executables, one a target, for every parser that reads outside bytes. What each
// checks lives in the project's EdgeFuzzTargets module, which the test suite also runs over
// the committed corpora. scripts/fuzz builds this package with the whole project instrumented.
let targets: [(name: String, target: String)] = [
    ("FuzzDNS", "dns"), ("FuzzProxy", "proxy"), ("FuzzDocument", "document"), ("FuzzCapture", "capture"), ("FuzzControl", "control"), ("FuzzRelay", "relay"),
    ("FuzzMail", "mail"), ("FuzzPackets", "packets"), ("FuzzHTTP", "http"),
]

let package = Package(
    name: "edgesim-fuzz",
    dependencies: [.package(name: "edgesim", path: "..")],
    targets: [
        .target(
            name: "FuzzDriver",
            dependencies: [.product(name: "EdgeFuzzTargets", package: "edgesim")],
            swiftSettings: [.unsafeFlags(["-sanitize=fuzzer,address"])]
        )
    ]
        + targets.map { fuzzer in
            .executableTarget(
                name: fuzzer.name,
                dependencies: ["FuzzDriver"],
                swiftSettings: [.unsafeFlags(["-sanitize=fuzzer,address", "-parse-as-library"])],
                linkerSettings: [.unsafeFlags(["-sanitize=fuzzer,address", "-use-ld=lld"])]
            )
        }
)
