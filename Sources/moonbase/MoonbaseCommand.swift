import ArgumentParser
import LuaRuntime
import MoonbaseServer

/// `moonbase`: the records server and the tools a hook author uses.
@main
struct MoonbaseCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "moonbase",
        abstract: "A records backend with drop-in Lua hooks.",
        version: MoonbaseServer.version,
        subcommands: [ServeCommand.self, HooksCommand.self, CopyDataCommand.self]
    )
}

struct HooksCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "hooks",
        abstract: "List, try out and start hook files; editor types; deliveries.",
        subcommands: [HooksListCommand.self, HooksTestCommand.self, HooksNewCommand.self, HooksTypesCommand.self,
                      HooksDeliveriesCommand.self, HooksRetryCommand.self, HooksReloadCommand.self, HooksRunCommand.self]
    )
}

/// Budget flags shared by the commands that run hooks (SPEC section 7).
struct BudgetOptions: ParsableArguments {
    @Option(name: .customLong("hook-instructions"), help: "VM instructions one handler call may execute (0: no limit).")
    var instructions: Int = LuaLimits.default.instructions

    @Option(name: .customLong("hook-timeout-ms"), help: "Wall-clock milliseconds one handler call may take (0: no limit).")
    var timeoutMilliseconds: Int = Int(LuaLimits.default.wallClock.components.seconds * 1000)

    @Option(name: .customLong("hook-memory-mb"), help: "MiB of memory one Lua state may hold (0: no limit).")
    var memoryMegabytes: Int = LuaLimits.default.memoryBytes >> 20

    var limits: LuaLimits {
        LuaLimits(instructions: instructions, wallClock: .milliseconds(timeoutMilliseconds), memoryBytes: memoryMegabytes << 20)
    }
}

