// Benchmarks, run in release mode: `swift run -c release moonbase-bench [iterations] [rounds]`.
let arguments = CommandLine.arguments.dropFirst().compactMap { Int($0) }
let iterations = arguments.first ?? 200_000
let rounds = arguments.dropFirst().first ?? 7
try HookDispatchBenchmark.run(iterations: iterations, rounds: rounds)
try HookDispatchBenchmark.runBefore(iterations: iterations, rounds: rounds)
