import Foundation
import FuzzerDriver
import FuzzChecks

// JSON → Lua → JSON is the identity (see `FuzzChecks.luaBridge`), on one state for the whole run:
// each input leaves its stack as it found it.
nonisolated(unsafe) let state = FuzzChecks.makeBridgeState()
exit(runFuzzer { bytes in FuzzChecks.luaBridge(bytes, state: state) })
