// swift-tools-version:6.1
import PackageDescription

let package = Package(
    name: "edgesim",
    platforms: [.macOS(.v15)],
    products: [
        .executable(name: "edgesim", targets: ["edgesim"]),
        .library(name: "EdgeModel", targets: ["EdgeModel"]),
        .library(name: "EdgePcap", targets: ["EdgePcap"]),
        .library(name: "EdgeProxyLibrary", targets: ["EdgeProxy"]),
        .library(name: "EdgeDNSLibrary", targets: ["EdgeDNS"]),
        .library(name: "EdgeNetLibrary", targets: ["EdgeNet"]),
        .library(name: "EdgeFuzzTargets", targets: ["EdgeFuzzTargets"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-nio.git", from: "2.101.0"),
        .package(url: "https://github.com/apple/swift-nio-ssl.git", from: "2.37.0"),
        .package(url: "https://github.com/apple/swift-certificates.git", from: "1.21.0"),
        .package(url: "https://github.com/apple/swift-crypto.git", "3.12.3"..<"5.0.0"),
        .package(url: "https://github.com/apple/swift-asn1.git", from: "1.7.0"),
        .package(url: "https://github.com/apple/swift-argument-parser.git", from: "1.8.0"),
        .package(url: "https://github.com/apple/swift-log.git", from: "1.16.0"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle.git", from: "2.13.0"),
        .package(url: "https://github.com/jpsim/Yams.git", from: "6.2.0"),
        .package(url: "https://github.com/hummingbird-project/hummingbird.git", from: "2.28.0"),
        .package(url: "https://github.com/apple/swift-metrics.git", from: "2.13.0"),
        .package(url: "https://github.com/swift-server/swift-prometheus.git", from: "2.4.0"),
    ],
    targets: [
        // Apps, topologies and scenarios as value types: reading, decoding, validation.
        .target(
            name: "EdgeModel",
            dependencies: [.product(name: "Yams", package: "Yams")]
        ),
        // DNS wire format, zones, the authoritative responder and a small resolver.
        .target(
            name: "EdgeDNS",
            dependencies: [
                "EdgeModel",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
            ]
        ),
        // The data plane: codecs, access rules, TCP and UDP relays, events, certificates.
        .target(
            name: "EdgeProxy",
            dependencies: [
                "EdgeModel", "EdgeDNS", "EdgeRouting", "CEdgeNet",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "NIOTLS", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "X509", package: "swift-certificates"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "SwiftASN1", package: "swift-asn1"),
            ]
        ),
        // Paths across the topology: shortest by latency, nearest live edge for each client.
        .target(name: "EdgeRouting", dependencies: ["EdgeModel"]),
        // setns and TUN ioctls, which Swift cannot call directly (ioctl is variadic).
        .target(name: "CEdgeNet"),
        // Links emulated in user space, namespaces, and the fabric that plays the internet's part.
        .target(
            name: "EdgeNet",
            dependencies: [
                "EdgeModel", "EdgeDNS", "CEdgeNet",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
            ]
        ),
        // libpcap, as Debian's libpcap-dev installs it.
        .systemLibrary(
            name: "CPcap",
            pkgConfig: "libpcap",
            providers: [.apt(["libpcap-dev"])]
        ),
        // Capture files read through libpcap.
        .target(
            name: "EdgePcap",
            dependencies: ["CPcap", "EdgeModel"]
        ),
        // The running system: node processes as services, validation across files; later the fleet and runner.
        .target(
            name: "EdgeSim",
            dependencies: [
                "EdgeModel", "EdgePcap", "EdgeProxy", "EdgeDNS", "EdgeRouting", "EdgeNet",
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "NIOTLS", package: "swift-nio"),
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "CoreMetrics", package: "swift-metrics"),
                .product(name: "Crypto", package: "swift-crypto"),
            ]
        ),
        // The fleet's HTTP API: Spectrum's paths and edgesim's own, on a running fleet's controller.
        .target(
            name: "EdgeAPI",
            dependencies: [
                "EdgeSim", "EdgeModel", "EdgeDNS",
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "Prometheus", package: "swift-prometheus"),
                .product(name: "CoreMetrics", package: "swift-metrics"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
            ],
            // The API's OpenAPI document, served at /openapi.yaml.
            resources: [.embedInCode("openapi.yaml")]
        ),
        // What each fuzzer checks of a parser fed arbitrary bytes (Fuzz/ runs them under libFuzzer).
        .target(
            name: "EdgeFuzzTargets",
            dependencies: [
                "EdgeModel", "EdgePcap", "EdgeProxy", "EdgeDNS", "EdgeSim", "EdgeNet",
                .product(name: "NIOCore", package: "swift-nio"),
            ]
        ),
        // Argument parsing and command wiring; the work itself lives in the library modules.
        .target(
            name: "EdgeCLI",
            dependencies: [
                "EdgeSim", "EdgeAPI", "EdgeProxy", "EdgeDNS", "EdgePcap", "EdgeNet",
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ]
        ),
        .executableTarget(
            name: "edgesim",
            dependencies: ["EdgeCLI"]
        ),
        .testTarget(name: "EdgeModelTests", dependencies: ["EdgeModel"]),
        .testTarget(name: "EdgePcapTests", dependencies: ["EdgePcap"]),
        .testTarget(name: "EdgeRoutingTests", dependencies: ["EdgeRouting", "EdgeModel"]),
        .testTarget(
            name: "EdgeNetTests",
            dependencies: [
                "EdgeNet", "EdgeModel", "EdgeDNS", "EdgeProxy",
                .product(name: "NIOCore", package: "swift-nio"), .product(name: "NIOPosix", package: "swift-nio"),
            ]
        ),
        .testTarget(
            name: "EdgeDNSTests",
            dependencies: [
                "EdgeDNS", "EdgeModel", .product(name: "NIOCore", package: "swift-nio"), .product(name: "NIOPosix", package: "swift-nio"),
            ]
        ),
        .testTarget(
            name: "EdgeProxyTests",
            dependencies: [
                "EdgeProxy", "EdgeModel", "EdgeDNS", "EdgeRouting",
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "NIOTLS", package: "swift-nio"),
                .product(name: "NIOEmbedded", package: "swift-nio"),
                .product(name: "NIOTestUtils", package: "swift-nio"),
            ]
        ),
        .testTarget(
            name: "EdgeFuzzTargetsTests",
            dependencies: ["EdgeFuzzTargets"]
        ),
        .testTarget(
            name: "EdgeSimTests",
            dependencies: [
                "EdgeSim", "EdgeModel", "EdgePcap", "EdgeDNS", "EdgeProxy", "EdgeNet",
                .product(name: "NIOCore", package: "swift-nio"), .product(name: "NIOPosix", package: "swift-nio"),
            ]
        ),
        .testTarget(name: "EdgeCLITests", dependencies: ["EdgeCLI", "EdgeModel", "EdgeSim", "EdgeNet"], exclude: ["SpectrumSDKClient.py"]),
        .testTarget(name: "EdgeAPITests", dependencies: ["EdgeAPI", "EdgeModel"]),
    ],
    swiftLanguageModes: [.v6]
)
