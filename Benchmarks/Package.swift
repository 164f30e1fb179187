// swift-tools-version:6.1
import PackageDescription

// Benchmarks live in their own package so that building and testing edgesim does not build
// the benchmark tooling. Run from this folder:
//   swift package benchmark            micro-benchmarks (codecs, rule matching)
//   swift run -c release edgesim-bench   edgesim against HAProxy and socat, as ratios
let package = Package(
    name: "edgesim-benchmarks",
    platforms: [.macOS(.v15)],
    dependencies: [
        .package(name: "edgesim", path: ".."),
        .package(url: "https://github.com/ordo-one/benchmark.git", from: "1.38.0", traits: ["MallocInterposer"]),
        .package(url: "https://github.com/apple/swift-nio.git", from: "2.101.0"),
        .package(url: "https://github.com/apple/swift-nio-ssl.git", from: "2.37.0"),
        .package(url: "https://github.com/apple/swift-argument-parser.git", from: "1.8.0"),
    ],
    targets: [
        .executableTarget(
            name: "ProxyCodecs",
            dependencies: [
                .product(name: "Benchmark", package: "benchmark"),
                .product(name: "EdgeProxyLibrary", package: "edgesim"),
                .product(name: "EdgeDNSLibrary", package: "edgesim"),
                .product(name: "EdgeModel", package: "edgesim"),
                .product(name: "NIOCore", package: "swift-nio"),
            ],
            path: "Benchmarks/ProxyCodecs",
            plugins: [.plugin(name: "BenchmarkPlugin", package: "benchmark")]
        ),
        .executableTarget(
            name: "Connections",
            dependencies: [
                .product(name: "Benchmark", package: "benchmark"),
                .product(name: "EdgeProxyLibrary", package: "edgesim"),
                .product(name: "EdgeModel", package: "edgesim"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
            ],
            path: "Benchmarks/Connections",
            plugins: [.plugin(name: "BenchmarkPlugin", package: "benchmark")]
        ),
        .executableTarget(
            name: "edgesim-bench",
            dependencies: [
                .product(name: "EdgeProxyLibrary", package: "edgesim"),
                .product(name: "EdgePcap", package: "edgesim"),
                .product(name: "EdgeDNSLibrary", package: "edgesim"),
                .product(name: "EdgeNetLibrary", package: "edgesim"),
                .product(name: "EdgeModel", package: "edgesim"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ],
            path: "Runner"
        ),
    ],
    swiftLanguageModes: [.v6]
)
