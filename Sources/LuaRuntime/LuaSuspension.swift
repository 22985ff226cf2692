import CLua
import MoonbaseJSON

// Host functions that wait (an HTTP request, a database write) without blocking the Lua
// state's thread: the host function hands back an async operation, the trampoline yields the
// handler's coroutine, the host runs the operation elsewhere and later resumes the coroutine on
// the state's thread with the operation's values as the host function's results. Meanwhile the
// state runs other handlers.

/// An async operation a host function waits for. `deadline` is when the calling handler's
/// wall-clock budget runs out (nil: none); the operation should give up by then.
public struct LuaSuspension: Sendable {
    public var operation: @Sendable (_ deadline: ContinuousClock.Instant?) async -> LuaResumption

    public init(_ operation: @escaping @Sendable (_ deadline: ContinuousClock.Instant?) async -> LuaResumption) {
        self.operation = operation
    }
}

/// What a waiting host function returns to its caller once its operation is done.
public enum LuaResumption: Sendable {
    /// These values are the call's results.
    case values([JSONValue])
    /// The call returns `nil, message`: the Lua way to report an expected failure.
    case failure(String)
    /// The call raises this message as an error (prefixed with the caller's `file:line:`).
    case error(String)
}

/// A handler call paused in a host function. Resume it with `LuaState.resume(_:with:)`, on the
/// state's thread, once `suspension` has run; until then the state may run other calls.
public final class LuaSuspendedCall: @unchecked Sendable { // touched only on the state's thread, but for the immutable fields
    let threadRef: Int32
    let co: OpaquePointer
    let instructions: Int64
    let deadlineNanoseconds: Int64
    /// `file:line:` of the waiting call, for errors raised when it resumes.
    let location: String
    /// What the call waits for.
    public let suspension: LuaSuspension
    /// The context the call ran with (`LuaState.callContext`), restored when it resumes.
    public let context: (any Sendable)?
    /// When the call's wall-clock budget runs out (nil: no wall-clock budget).
    public let deadline: ContinuousClock.Instant?

    init(threadRef: Int32, co: OpaquePointer, instructions: Int64, deadlineNanoseconds: Int64, location: String,
         suspension: LuaSuspension, context: (any Sendable)?) {
        self.threadRef = threadRef
        self.co = co
        self.instructions = instructions
        self.deadlineNanoseconds = deadlineNanoseconds
        self.location = location
        self.suspension = suspension
        self.context = context
        deadline = deadlineNanoseconds > 0
            ? ContinuousClock.now + .nanoseconds(max(0, deadlineNanoseconds - mb_now_ns()))
            : nil
    }
}

/// How a handler call ended, or that it is waiting.
public enum LuaCallOutcome {
    /// It returned this many values, pushed on the host's stack.
    case returned(Int32)
    case failed(LuaError)
    /// It waits in a host function; nothing was pushed.
    case suspended(LuaSuspendedCall)
}

extension LuaState {
    /// Calls a handler with the value at `argument` in a coroutine of its own, under fresh
    /// budgets, allowing it to wait in host functions. Host functions see `callContext` as
    /// `LuaArguments.context`, during this call and after it resumes.
    public func callHandler(_ function: LuaRef, argument: Int32) -> LuaCallOutcome {
        let (threadRef, co) = takeThread()
        mb_getref(co, function.raw)
        lua_pushvalue(L, argument)
        lua_xmove(L, co, 1)
        mb_arm_budget(co, Int64(limits.instructions), wallClockNanoseconds)
        return resume(threadRef, co, argumentCount: 1, suspendable: true)
    }

    /// Resumes a suspended call with its operation's outcome, under what remains of its budgets.
    /// A call whose wall-clock budget ran out while it waited fails without resuming.
    public func resume(_ call: LuaSuspendedCall, with resumption: LuaResumption) -> LuaCallOutcome {
        if call.deadlineNanoseconds > 0 && mb_now_ns() > call.deadlineNanoseconds {
            return abandon(call.threadRef, call.co, status: LUA_YIELD, exceeded: Int32(MB_EXCEEDED_WALL_CLOCK))
        }
        let rt = runtime
        rt.pointee.instructions = call.instructions
        rt.pointee.instruction_limit = Int64(limits.instructions)
        rt.pointee.deadline_ns = call.deadlineNanoseconds
        rt.pointee.exceeded = Int32(MB_WITHIN_BUDGET)
        let co = call.co
        var count: Int32 = 0
        switch resumption {
        case .values(let values):
            for value in values { pushJSON(co, value) }
            count = Int32(values.count)
        case .failure(let message):
            lua_pushnil(co)
            pushString(co, message)
            count = 2
        case .error(let message):
            pushString(co, call.location + " " + message)
            rt.pointee.resume_raise = 1
        }
        rt.pointee.resume_count = count
        callContext = call.context
        return resume(call.threadRef, co, argumentCount: count, suspendable: true)
    }

    /// Resumes `co` (budgets armed); see `LuaCall.swift` for the non-suspendable entry points.
    func resume(_ threadRef: Int32, _ co: OpaquePointer, argumentCount: Int32, suspendable: Bool) -> LuaCallOutcome {
        let outer = waitingCoroutine
        waitingCoroutine = suspendable ? co : nil
        var resultCount: Int32 = 0
        runtime.pointee.cap_lifted -= 1
        let status = lua_resume(co, L, argumentCount, &resultCount)
        runtime.pointee.cap_lifted += 1
        waitingCoroutine = outer
        let exceeded = runtime.pointee.exceeded
        let instructions = runtime.pointee.instructions
        let deadline = runtime.pointee.deadline_ns
        // The budgets belong to the call: code the host runs next (setting up an environment,
        // say) must not find them armed, nor exceeded.
        runtime.pointee.instruction_limit = 0
        runtime.pointee.deadline_ns = 0
        runtime.pointee.exceeded = Int32(MB_WITHIN_BUDGET)

        // A call that ran out of budget fails even if it then returned: a script whose own
        // coroutine was stopped may finish before its next count hook.
        if status == LUA_OK && exceeded == MB_WITHIN_BUDGET {
            lua_xmove(co, L, resultCount)
            lua_settop(co, 0)
            idleThreads.append((threadRef, co))
            return .returned(resultCount)
        }
        if status == LUA_YIELD && exceeded == MB_WITHIN_BUDGET, let suspension = pendingSuspension {
            pendingSuspension = nil
            return .suspended(LuaSuspendedCall(
                threadRef: threadRef, co: co, instructions: instructions, deadlineNanoseconds: deadline,
                location: location(in: co), suspension: suspension, context: callContext))
        }
        pendingSuspension = nil
        return abandon(threadRef, co, status: status, exceeded: exceeded)
    }
}
