// Benchmarks, run in release mode: `swift run -c release moonbase-bench [iterations] [rounds]`.
let arguments = CommandLine.arguments.dropFirst().compactMap { Int($0) }
try HookDispatchBenchmark.run(iterations: arguments.first ?? 200_000, rounds: arguments.dropFirst().first ?? 7)
