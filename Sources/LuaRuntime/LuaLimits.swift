/// Budgets for one call into Lua (a handler call, or a file's top-level code) and the memory
/// cap of a whole state. Zero means "no limit".
public struct LuaLimits: Sendable, Equatable {
    /// VM instructions one call may execute; an infinite loop ends with "hook exceeded its time budget".
    public var instructions: Int
    /// Wall-clock time one call may take.
    public var wallClock: Duration
    /// Bytes one Lua state may hold; a runaway allocation ends with "not enough memory".
    public var memoryBytes: Int

    public init(instructions: Int, wallClock: Duration, memoryBytes: Int) {
        self.instructions = instructions
        self.wallClock = wallClock
        self.memoryBytes = memoryBytes
    }

    /// 50 M instructions (well under a second of pure Lua), 5 s, 64 MiB per state.
    public static let `default` = LuaLimits(instructions: 50_000_000, wallClock: .seconds(5), memoryBytes: 64 << 20)

    var wallClockNanoseconds: Int64 {
        let (seconds, attoseconds) = wallClock.components
        return seconds * 1_000_000_000 + attoseconds / 1_000_000_000
    }
}
