// swift-tools-version:6.1
// The libFuzzer targets, a package of their own: they are built only with `-sanitize=fuzzer`
// (which links in libFuzzer's driver), by `scripts/fuzz.sh`. The properties they check live in the main
// package (`Fuzz/Checks`), where the tests replay the corpus with them.
import PackageDescription

let package = Package(
    name: "MoonbaseFuzz",
    dependencies: [.package(name: "Moonbase", path: "..")],
    targets: [
        // libFuzzer's driver, called from each target's `main`.
        .target(name: "FuzzerDriver", path: "Targets/FuzzerDriver"),
        .executableTarget(name: "FuzzJSONParser", dependencies: ["FuzzerDriver", .product(name: "FuzzChecks", package: "Moonbase")],
                          path: "Targets/FuzzJSONParser"),
        .executableTarget(name: "FuzzLuaBridge", dependencies: ["FuzzerDriver", .product(name: "FuzzChecks", package: "Moonbase")],
                          path: "Targets/FuzzLuaBridge"),
        .executableTarget(name: "FuzzRecordQuery", dependencies: ["FuzzerDriver", .product(name: "FuzzChecks", package: "Moonbase")],
                          path: "Targets/FuzzRecordQuery"),
    ]
)
