// Benchmarks, run in release mode: `swift run -c release moonbase-bench [names] [iterations] [rounds]`,
// names among dispatch, before and patterns (all by default).
let arguments = CommandLine.arguments.dropFirst()
let numbers = arguments.compactMap { Int($0) }
let names = Set(arguments.filter { Int($0) == nil })
let iterations = numbers.first ?? 200_000
let rounds = numbers.dropFirst().first ?? 7
if names.isEmpty || names.contains("dispatch") { try HookDispatchBenchmark.run(iterations: iterations, rounds: rounds) }
if names.isEmpty || names.contains("before") { try HookDispatchBenchmark.runBefore(iterations: iterations, rounds: rounds) }
if names.isEmpty || names.contains("patterns") { try PatternBenchmark.run(iterations: iterations, rounds: rounds) }
