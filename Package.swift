// swift-tools-version:6.0
import PackageDescription

let package = Package(
    name: "gatehouse",
    platforms: [.macOS(.v15)],
    products: [
        .executable(name: "gatehouse", targets: ["gatehouse"]),
    ],
    dependencies: [
        .package(url: "https://github.com/jpsim/Yams.git", from: "6.2.2"),
        .package(url: "https://github.com/apple/swift-argument-parser.git", from: "1.8.2"),
        .package(url: "https://github.com/apple/swift-crypto.git", from: "4.5.2"),
    ],
    targets: [
        // libevent 2.1 through pkg-config; the module map links event_pthreads explicitly.
        .systemLibrary(
            name: "CLibevent",
            pkgConfig: "libevent",
            providers: [.apt(["libevent-dev"])]
        ),
        // Interposes evhttp_send_error so evhttp's own refusals get the uniform error (see hook.c).
        .target(name: "CEvhttpHook", dependencies: ["CByteScan"], linkerSettings: [.linkedLibrary("dl")]),
        // Values shared by every layer: errors, reasons, decisions, the access-log record. No I/O.
        .target(name: "GatehouseCore", dependencies: ["CByteScan"]),
        // The control-byte scan of request heads and header values, 16 bytes a step (see scan.c).
        .target(name: "CByteScan"),
        // Path normalization, globs, the route table, client-address rules. Pure.
        .target(name: "GatehousePolicy", dependencies: ["GatehouseCore", "CByteScan"]),
        // JWS/JWK verification and claims. Pure; swift-crypto only.
        .target(
            name: "GatehouseAuth",
            dependencies: [
                "GatehouseCore",
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "_CryptoExtras", package: "swift-crypto"),
            ]
        ),
        // libxcrypt, for htpasswd hashes (bcrypt, SHA-512 crypt).
        .systemLibrary(name: "CCrypt", pkgConfig: "libxcrypt", providers: [.apt(["libcrypt-dev"])]),
        // Sessions: ids, records, the memory store, password checks off the loops, throttling, CSRF.
        .target(
            name: "GatehouseSessions",
            dependencies: ["GatehouseCore", "CCrypt", .product(name: "Crypto", package: "swift-crypto")]
        ),
        // hiredis 0.14 (libhiredis-dev) and its libevent adapter, for the Redis session store.
        .target(name: "CHiredis", linkerSettings: [.linkedLibrary("hiredis"), .linkedLibrary("event")]),
        // YAML -> raw structs -> validated domain values with FILE:LINE:COL problems.
        .target(
            name: "GatehouseConfig",
            dependencies: ["GatehouseCore", "GatehousePolicy", "GatehouseAuth", "GatehouseSessions",
                           .product(name: "Yams", package: "Yams")]
        ),
        // The decision pipeline shared by the proxy, forward auth and `explain`: request facts
        // (behind a header protocol), complete plans, session-endpoint plans. Pure: no libevent.
        .target(
            name: "GatehouseDecision",
            dependencies: ["GatehouseCore", "GatehouseAuth", "GatehouseConfig", "GatehouseSessions", "GatehousePolicy"]
        ),
        // The OpenSSL server context of `server.tls` (OpenSSL's headers come with the libevent shim).
        .target(name: "GatehouseTLS", dependencies: ["CLibevent", "GatehouseConfig"]),
        // evhttp listeners, workers, upstream pools, admin endpoints, log sink.
        .target(
            name: "GatehouseServer",
            dependencies: [
                "CLibevent", "CEvhttpHook", "CHiredis", "GatehouseCore", "GatehousePolicy", "GatehouseAuth",
                "GatehouseConfig", "GatehouseSessions", "GatehouseDecision", "GatehouseTLS",
            ]
        ),
        .executableTarget(
            name: "gatehouse",
            dependencies: [
                "GatehouseServer", "GatehouseConfig", "GatehousePolicy", "GatehouseCore", "GatehouseSessions", "GatehouseTLS",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ]
        ),
        .testTarget(name: "GatehouseCoreTests", dependencies: ["GatehouseCore"]),
        .testTarget(name: "GatehousePolicyTests", dependencies: ["GatehousePolicy"]),
        .testTarget(
            name: "GatehouseConfigTests",
            dependencies: ["GatehouseConfig", "GatehouseTLS"],
            resources: [.copy("Golden")]
        ),
        .testTarget(name: "GatehouseAuthTests", dependencies: ["GatehouseAuth"], exclude: ["Fixtures"]),
        .testTarget(name: "GatehouseSessionsTests", dependencies: ["GatehouseSessions"], exclude: ["Fixtures"]),
        .testTarget(name: "GatehouseServerTests",
                    dependencies: ["GatehouseServer", "GatehouseSessions", "GatehouseDecision", "GatehouseTLS", "CLibevent", "CEvhttpHook"]),
        .testTarget(name: "GatehouseDecisionTests",
                    dependencies: ["GatehouseDecision", "GatehouseConfig", "GatehouseSessions", "GatehouseAuth"]),
    ]
)
