import Foundation
import FuzzChecks
import FuzzerDriver

// The records listing's query parsing (see `FuzzChecks.recordQuery`).
exit(runFuzzer { bytes in FuzzChecks.recordQuery(bytes) })
