import Foundation
import FuzzerDriver
import FuzzChecks

// Moonbase's JSON parser against Foundation's (see `FuzzChecks.parser`), run by libFuzzer's
// driver: SwiftPM gives an executable its own `main`, so the driver is called from here.
exit(runFuzzer { bytes in FuzzChecks.parser(bytes) })
