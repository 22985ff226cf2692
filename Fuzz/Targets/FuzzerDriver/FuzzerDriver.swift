/// libFuzzer's driver (linked in by `-sanitize=fuzzer`), for fuzz targets that have a `main`.
@_silgen_name("LLVMFuzzerRunDriver")
private func LLVMFuzzerRunDriver(
    _ argc: UnsafeMutablePointer<CInt>, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>>,
    _ callback: @convention(c) (UnsafePointer<UInt8>?, Int) -> CInt) -> CInt

/// The check the running fuzz target applies to each input (libFuzzer's callback is a C
/// function, which cannot capture it).
nonisolated(unsafe) private var currentCheck: ([UInt8]) -> String? = { _ in nil }

/// Runs libFuzzer on the command line's arguments with `check`: an input it fails (a non-nil
/// description) stops the run with that description, and libFuzzer saves the input.
public func runFuzzer(_ check: @escaping ([UInt8]) -> String?) -> CInt {
    currentCheck = check
    var argc = CommandLine.argc
    var argv = CommandLine.unsafeArgv
    return LLVMFuzzerRunDriver(&argc, &argv) { data, size in
        let bytes = data.map { Array(UnsafeBufferPointer(start: $0, count: size)) } ?? []
        if let failure = currentCheck(bytes) { fatalError(failure) }
        return 0
    }
}
