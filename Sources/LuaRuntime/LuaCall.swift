import CLua
import MoonbaseJSON

extension LuaState {
    /// Compiles `source` (text only: binary chunks are refused) with `chunkName` (`@hooks/a.lua`,
    /// so errors say `hooks/a.lua:LINE:`) and binds its globals to `environment`.
    public func load(_ source: [UInt8], chunkName: String, environment: LuaRef) -> Result<LuaRef, LuaError> {
        let status = source.withUnsafeBufferPointer { buffer in
            buffer.withMemoryRebound(to: CChar.self) { mb_loadbuffer(L, $0.baseAddress, $0.count, chunkName) }
        }
        guard status == LUA_OK else {
            let message = popString(L) ?? "cannot load \(chunkName)"
            return .failure(LuaError(kind: status == LUA_ERRMEM ? .memory : .syntax, message: message))
        }
        push(environment)
        _ = lua_setupvalue(L, -2, 1) // the chunk's only upvalue is _ENV
        return .success(popRef())
    }

    /// Calls `function` with the values at `arguments` (indices on the host's stack) in a
    /// coroutine of its own, under the per-call budgets. On success the results are pushed on
    /// the host's stack and their count returned.
    ///
    /// The coroutine lets the count hook stop a runaway script by yielding (no `pcall` in the
    /// script can catch a yield) and lets host functions suspend a handler later on.
    public func call(_ function: LuaRef, arguments: Int32...) -> Result<Int32, LuaError> {
        let (threadRef, co) = takeThread()
        mb_getref(co, function.raw)
        for index in arguments {
            lua_pushvalue(L, index)
        }
        lua_xmove(L, co, Int32(arguments.count))
        return resume(threadRef, co, argumentCount: Int32(arguments.count))
    }

    /// `call` with one argument, without the variadic array (the hot path of hook dispatch).
    public func call(_ function: LuaRef, argument: Int32) -> Result<Int32, LuaError> {
        let (threadRef, co) = takeThread()
        mb_getref(co, function.raw)
        lua_pushvalue(L, argument)
        lua_xmove(L, co, 1)
        return resume(threadRef, co, argumentCount: 1)
    }

    private func resume(_ threadRef: Int32, _ co: OpaquePointer, argumentCount: Int32) -> Result<Int32, LuaError> {
        mb_arm_budget(co, Int64(limits.instructions), wallClockNanoseconds)
        switch resume(threadRef, co, argumentCount: argumentCount, suspendable: false) {
        case .returned(let count): return .success(count)
        case .failed(let error): return .failure(error)
        case .suspended: preconditionFailure("a call that may not wait was suspended")
        }
    }

    /// Ends a coroutine that failed, ran out of budget (`exceeded` says which) or yielded without
    /// reason: it is never reused.
    func abandon(_ threadRef: Int32, _ co: OpaquePointer, status: Int32, exceeded: Int32) -> LuaCallOutcome {
        defer { mb_unref(L, threadRef) }
        if exceeded != MB_WITHIN_BUDGET {
            let message = [location(in: co), budgetMessage(exceeded)].filter { !$0.isEmpty }.joined(separator: " ")
            return .failed(LuaError(kind: .budget, message: message, traceback: traceback(of: co)))
        }
        if status == LUA_YIELD {
            return .failed(LuaError(kind: .yield, message: location(in: co) + " attempt to yield from outside a coroutine", traceback: traceback(of: co)))
        }
        return .failed(error(from: co, status: status))
    }

    /// Reuses a coroutine that finished cleanly, or makes one; either way anchored in the registry.
    func takeThread() -> (Int32, OpaquePointer) {
        if let idle = idleThreads.popLast() { return idle }
        let co = lua_newthread(L)!
        return (mb_ref(L), co)
    }

    private func budgetMessage(_ exceeded: Int32) -> String {
        exceeded == MB_EXCEEDED_INSTRUCTIONS
            ? "hook exceeded its time budget (\(limits.instructions) instructions)"
            : "hook exceeded its time budget (\(limits.wallClock) wall clock)"
    }

    private func error(from co: OpaquePointer, status: Int32) -> LuaError {
        let kind: LuaError.Kind = status == LUA_ERRMEM ? .memory : .runtime
        let trace = traceback(of: co)
        switch lua_type(co, -1) {
        case LUA_TSTRING:
            return LuaError(kind: kind, message: stringValue(co, -1)!, traceback: trace)
        case LUA_TTABLE:
            let value = try? readJSON(co, -1, orderHint: nil)
            // `error({code = 42})` reads as the table itself, where it was raised: `file:line: {"code":42}`.
            var message = location(in: co) + " " + (value?.serializedString() ?? "(error object is a table value)")
            if case .object(let object)? = value, case .string(let text)? = object["message"] { message = text }
            return LuaError(kind: kind, message: message, traceback: trace, value: value)
        default:
            let typeName = String(cString: lua_typename(co, lua_type(co, -1)))
            return LuaError(kind: kind, message: location(in: co) + " (error object is a \(typeName) value)", traceback: trace)
        }
    }

    private func traceback(of co: OpaquePointer) -> String? {
        mb_traceback(L, co, nil)
        return popString(L)
    }

    /// `file:line:` of the innermost Lua frame of `co`.
    func location(in co: OpaquePointer) -> String {
        var ar = lua_Debug()
        var level: Int32 = 0
        while lua_getstack(co, level, &ar) != 0 {
            if lua_getinfo(co, "Sl", &ar) != 0 && ar.currentline > 0 {
                let source = withUnsafeBytes(of: &ar.short_src) { String(cString: $0.bindMemory(to: CChar.self).baseAddress!) }
                return "\(source):\(ar.currentline):"
            }
            level += 1
        }
        return ""
    }
}
