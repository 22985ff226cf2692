// swift-tools-version:6.1
import PackageDescription

let package = Package(
    name: "Moonbase",
    platforms: [.macOS(.v15)],
    products: [
        .executable(name: "moonbase", targets: ["moonbase"]),
        // For the fuzz targets' package (Fuzz/Package.swift).
        .library(name: "FuzzChecks", targets: ["FuzzChecks"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2"),
        .package(url: "https://github.com/apple/swift-log", from: "1.16.2"),
        .package(url: "https://github.com/groue/GRDB.swift", from: "7.10.0"),
        .package(url: "https://github.com/hummingbird-project/hummingbird", from: "2.28.1"),
        .package(url: "https://github.com/swift-server/async-http-client", from: "1.37.0"),
        .package(url: "https://github.com/apple/swift-crypto", from: "3.12.3"),
        .package(url: "https://github.com/apple/swift-nio", from: "2.101.2"),
        .package(url: "https://github.com/apple/swift-nio-ssl", from: "2.37.6"),
        .package(url: "https://github.com/apple/swift-collections", from: "1.6.0"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle", from: "2.13.0"),
        .package(url: "https://github.com/vapor/postgres-nio", from: "1.33.2"),
        .package(url: "https://github.com/apple/swift-metrics", from: "2.13.0"),
        .package(url: "https://github.com/swift-server/swift-prometheus", from: "2.4.1"),
    ],
    targets: [
        // Debian's liblua5.4-dev, plus static inline shims for Lua's macros and the error trampoline.
        .systemLibrary(name: "CLua", path: "CLua", pkgConfig: "lua5.4", providers: [.apt(["liblua5.4-dev"])]),

        // JSON values, a byte-level parser and writer. Knows nothing of Lua, SQL or HTTP.
        .target(name: "MoonbaseJSON"),
        // The event vocabulary: the event and its type, the record with its one JSON shape and
        // system fields, timestamps and ids. Knows only JSON.
        .target(name: "MoonbaseModel", dependencies: ["MoonbaseJSON"]),
        // Lua's pattern matcher, string.rep and the table functions that loop, counting their steps
        // against the budgets (C: they may raise). The sandbox puts them in place of Lua's own.
        .target(name: "LuaBounded", dependencies: ["CLua"]),
        // The Lua layer: VM, values, sandbox, budgets. Knows nothing of hooks.
        .target(name: "LuaRuntime", dependencies: [
            "CLua", "LuaBounded", "MoonbaseJSON", .product(name: "Logging", package: "swift-log"),
        ]),
        // The hook host: discovery, registration, dispatch, listing. Knows nothing of HTTP or SQL.
        .target(name: "HookHost", dependencies: [
            "LuaRuntime", "MoonbaseJSON", "MoonbaseModel", .product(name: "Logging", package: "swift-log"),
            .product(name: "DequeModule", package: "swift-collections"),
            // SHA-256 for the hooks folder's digest, which tells nodes apart that serve other hooks.
            .product(name: "Crypto", package: "swift-crypto"),
        ]),
        // The Lua host modules: `http` (AsyncHTTPClient), `crypto`, `webhook` (swift-crypto), and
        // `records` over the store protocol. They know hooks only for the calling handler's event.
        .target(name: "HostModules", dependencies: [
            "HookHost", "LuaRuntime", "MoonbaseJSON", "MoonbaseModel", "RecordStore",
            .product(name: "AsyncHTTPClient", package: "async-http-client"),
            .product(name: "Crypto", package: "swift-crypto"),
            .product(name: "NIOCore", package: "swift-nio"),
            .product(name: "NIOHTTP1", package: "swift-nio"),
            .product(name: "NIOPosix", package: "swift-nio"),
        ]),
        // The store: collections and records in SQLite or PostgreSQL. Knows nothing of Lua.
        .target(name: "RecordStore", dependencies: [
            "MoonbaseJSON", "MoonbaseModel", .product(name: "GRDB", package: "GRDB.swift"),
            .product(name: "GRDBSQLite", package: "GRDB.swift"),
            .product(name: "PostgresNIO", package: "postgres-nio"),
            // Only for its error type, which PostgresClient throws as it is.
            .product(name: "_ConnectionPoolModule", package: "postgres-nio"),
            .product(name: "NIOPosix", package: "swift-nio"),
            .product(name: "NIOSSL", package: "swift-nio-ssl"),
            .product(name: "Logging", package: "swift-log"),
            .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
        ]),
        // The server wires the store and the hook host behind the REST API.
        .target(name: "MoonbaseServer", dependencies: [
            "HookHost", "HostModules", "LuaRuntime", "RecordStore", "MoonbaseJSON", "MoonbaseModel",
            .product(name: "Hummingbird", package: "hummingbird"),
            .product(name: "NIOCore", package: "swift-nio"),
            .product(name: "Logging", package: "swift-log"),
            .product(name: "DequeModule", package: "swift-collections"),
            .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            .product(name: "Metrics", package: "swift-metrics"),
            .product(name: "Prometheus", package: "swift-prometheus"),
        ]),
        // The command line: thin.
        .executableTarget(name: "moonbase", dependencies: [
            "MoonbaseServer", "HookHost", "HostModules", "LuaRuntime", "MoonbaseJSON", "MoonbaseModel", "RecordStore",
            .product(name: "ArgumentParser", package: "swift-argument-parser"),
            .product(name: "Logging", package: "swift-log"),
        ]),

        // Benchmarks (release mode, not tests): `swift run -c release moonbase-bench`.
        .target(name: "CLuaFloor", dependencies: ["CLua"], path: "Benchmarks/CLuaFloor"),
        .executableTarget(name: "moonbase-bench", dependencies: [
            "HookHost", "LuaRuntime", "MoonbaseJSON", "MoonbaseModel", "CLuaFloor", "CLua", "LuaBounded",
        ], path: "Benchmarks/moonbase-bench"),

        // What the fuzz targets check (Fuzz/Package.swift builds them with libFuzzer); the tests
        // replay the committed corpus and every crash found with the same checks.
        .target(name: "FuzzChecks", dependencies: [
            "MoonbaseJSON", "LuaRuntime", "MoonbaseServer", "RecordStore",
            .product(name: "Logging", package: "swift-log"), .product(name: "HummingbirdCore", package: "hummingbird"),
        ], path: "Fuzz/Checks"),

        // Helpers shared by the test suites: temporary hooks folders, captured logs, a local HTTP server.
        .target(name: "MoonbaseTestSupport", dependencies: [
            "HookHost", "HostModules", "LuaRuntime", "MoonbaseJSON", "MoonbaseModel", .product(name: "Logging", package: "swift-log"),
            .product(name: "Hummingbird", package: "hummingbird"),
            .product(name: "NIOCore", package: "swift-nio"),
            "RecordStore", .product(name: "PostgresNIO", package: "postgres-nio"),
        ], path: "Tests/MoonbaseTestSupport"),
        .testTarget(name: "MoonbaseJSONTests", dependencies: ["MoonbaseJSON"]),
        .testTarget(name: "MoonbaseModelTests", dependencies: ["MoonbaseModel", "MoonbaseJSON"]),
        .testTarget(name: "LuaRuntimeTests", dependencies: ["LuaRuntime", "MoonbaseJSON", "CLua", "LuaBounded", "MoonbaseTestSupport"]),
        .testTarget(name: "HookHostTests", dependencies: ["HookHost", "HostModules", "LuaRuntime", "MoonbaseJSON", "MoonbaseModel", "MoonbaseTestSupport"]),
        .testTarget(name: "HostModulesTests", dependencies: [
            "HostModules", "HookHost", "LuaRuntime", "MoonbaseJSON", "MoonbaseTestSupport",
            .product(name: "Hummingbird", package: "hummingbird"),
            .product(name: "Crypto", package: "swift-crypto"),
            .product(name: "NIOCore", package: "swift-nio"),
        ]),
        .testTarget(name: "RecordStoreTests", dependencies: [
            "RecordStore", "MoonbaseJSON", "MoonbaseModel", "MoonbaseTestSupport", .product(name: "GRDB", package: "GRDB.swift"),
            .product(name: "PostgresNIO", package: "postgres-nio"), .product(name: "Logging", package: "swift-log"),
            .product(name: "_ConnectionPoolModule", package: "postgres-nio"),
        ]),
        .testTarget(name: "MoonbaseServerTests", dependencies: [
            "MoonbaseServer", "FuzzChecks", "HookHost", "HostModules", "RecordStore", "MoonbaseJSON", "MoonbaseModel", "MoonbaseTestSupport",
            .product(name: "Hummingbird", package: "hummingbird"),
            .product(name: "HummingbirdTesting", package: "hummingbird"),
        ]),
    ]
)
