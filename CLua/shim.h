// Static inline helpers for Lua 5.4's macros, the allocator with a memory cap, the budget
// count hook and the error trampoline. A systemLibrary target cannot hold .c files, so
// everything that must be C (because it may longjmp) lives here as `static inline`.
//
// The one rule (SPEC section 9): a Lua error or yield is a longjmp and must never cross a
// Swift frame. Swift functions exposed to Lua therefore return a sentinel, and
// `mb_trampoline` raises after the Swift frame has returned.
#ifndef MOONBASE_CLUA_SHIM_H
#define MOONBASE_CLUA_SHIM_H

#include <lua.h>
#include <lauxlib.h>
#include <lualib.h>
#include <stdlib.h>
#include <time.h>

/// Why a call was stopped by the host.
enum {
    MB_WITHIN_BUDGET = 0,
    MB_EXCEEDED_INSTRUCTIONS = 1,
    MB_EXCEEDED_WALL_CLOCK = 2,
};

/// Sentinels a host (Swift) function returns instead of raising.
enum {
    MB_HOST_ERROR = -1,   // the error value is on top of the stack: the trampoline raises it
    MB_HOST_SUSPEND = -2, // the coroutine waits for the host: the trampoline yields it
};

/// Per-state bookkeeping. It is the allocator's user data, so the allocator and the count
/// hook find it from any coroutine of the state with `lua_getallocf`.
typedef struct mb_runtime {
    size_t used;                 // bytes currently allocated by this state
    size_t limit;                // memory cap in bytes; 0 = none
    int cap_lifted;              // > 0 while host code pushes values: host allocations never fail on the cap
    int step;                    // count-hook granularity in VM instructions
    long long instructions;      // instructions executed by the current call (in steps)
    long long instruction_limit; // 0 = none
    long long deadline_ns;       // CLOCK_MONOTONIC deadline of the current call; 0 = none
    int exceeded;                // MB_WITHIN_BUDGET or why the current call must end
    int resume_count;            // values a host resumption hands to the suspended host function
    int resume_raise;            // 1: the resumption's single value is an error to raise
} mb_runtime;

static inline mb_runtime *mb_runtime_of(lua_State *L) {
    void *ud = NULL;
    lua_getallocf(L, &ud);
    return (mb_runtime *)ud;
}

// The coarse clock costs a few nanoseconds; its resolution (a few ms) is plenty for a budget.
static inline long long mb_now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
    return (long long)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

/// Counting allocator: refuses growth past the cap (Lua then runs an emergency collection and,
/// failing that, raises "not enough memory" in the offending call; the state stays usable).
static inline void *mb_alloc(void *ud, void *ptr, size_t osize, size_t nsize) {
    mb_runtime *rt = (mb_runtime *)ud;
    size_t old = ptr ? osize : 0;
    // Only the state's thread writes `used`, but others may read it (mb_memory_in_use): relaxed
    // atomic stores, which cost what plain ones do.
    if (nsize == 0) {
        free(ptr);
        __atomic_store_n(&rt->used, rt->used - old, __ATOMIC_RELAXED);
        return NULL;
    }
    if (nsize > old && rt->limit > 0 && rt->cap_lifted == 0 && rt->used - old + nsize > rt->limit) {
        return NULL;
    }
    void *p = realloc(ptr, nsize);
    if (p != NULL) __atomic_store_n(&rt->used, rt->used - old + nsize, __ATOMIC_RELAXED);
    return p;
}

/// Bytes the state holds. Another thread may read it while the state runs (the hook pool counts
/// the memory of states it gave up while they are still busy).
static inline size_t mb_memory_in_use(mb_runtime *rt) {
    return __atomic_load_n(&rt->used, __ATOMIC_RELAXED);
}

static inline lua_State *mb_newstate(mb_runtime *rt) {
    return lua_newstate(mb_alloc, rt);
}

/// Adds `steps` to the current call's count and checks both budgets; nonzero once the call
/// must end. The count hook charges VM instructions; C code that loops where no count hook
/// fires (the pattern matcher, see Sources/LuaBounded) charges its own steps.
static inline int mb_charge(mb_runtime *rt, long long steps) {
    if (rt->exceeded != MB_WITHIN_BUDGET) return 1;
    rt->instructions += steps;
    if (rt->instruction_limit > 0 && rt->instructions > rt->instruction_limit) {
        rt->exceeded = MB_EXCEEDED_INSTRUCTIONS;
    } else if (rt->deadline_ns > 0 && mb_now_ns() > rt->deadline_ns) {
        rt->exceeded = MB_EXCEEDED_WALL_CLOCK;
    } else {
        return 0;
    }
    return 1;
}

static inline void mb_count_hook(lua_State *L, lua_Debug *ar);

/// Stops a call whose budget is exceeded. From here on the count hook fires at every
/// instruction, so a script that catches the error with pcall is stopped again at its very next
/// instruction; where the coroutine can yield it yields (which no pcall can catch) and the host
/// abandons the coroutine. Inside the count hook this returns (the VM then yields); called from a
/// C function it does not return.
static inline void mb_stop(lua_State *L) {
    lua_sethook(L, mb_count_hook, LUA_MASKCOUNT, 1);
    if (lua_isyieldable(L)) {
        lua_yield(L, 0);
        return;
    }
    luaL_error(L, "hook exceeded its time budget");
}

/// The budget hook: charges `step` instructions at a time.
static inline void mb_count_hook(lua_State *L, lua_Debug *ar) {
    (void)ar;
    mb_runtime *rt = mb_runtime_of(L);
    if (mb_charge(rt, rt->step)) mb_stop(L);
}

/// Arms the budget of one call on coroutine `co`.
static inline void mb_arm_budget(lua_State *co, long long instruction_limit, long long wall_clock_ns) {
    mb_runtime *rt = mb_runtime_of(co);
    rt->instructions = 0;
    rt->instruction_limit = instruction_limit;
    rt->deadline_ns = wall_clock_ns > 0 ? mb_now_ns() + wall_clock_ns : 0;
    rt->exceeded = MB_WITHIN_BUDGET;
    lua_sethook(co, mb_count_hook, LUA_MASKCOUNT, rt->step);
}

/// Host functions: `fn` is a Swift @convention(c) function that never raises; it returns the
/// number of results, or MB_HOST_ERROR with the error value on top of the stack.
typedef int (*mb_host_fn)(lua_State *L);

/// Where a suspended host function goes on when the host resumes its coroutine: the values
/// handed to `lua_resume` are its results, or the error it raises.
static inline int mb_host_continue(lua_State *L, int status, lua_KContext ctx) {
    (void)status;
    (void)ctx;
    mb_runtime *rt = mb_runtime_of(L);
    if (rt->resume_raise) {
        rt->resume_raise = 0;
        return lua_error(L);
    }
    return rt->resume_count;
}

static inline int mb_trampoline(lua_State *L) {
    mb_host_fn fn = (mb_host_fn)lua_touserdata(L, lua_upvalueindex(1));
    mb_runtime *rt = mb_runtime_of(L);
    rt->cap_lifted++;
    int n = fn(L);
    rt->cap_lifted--;
    if (n == MB_HOST_ERROR) return lua_error(L); // raised here, after the Swift frame returned
    if (n == MB_HOST_SUSPEND) return lua_yieldk(L, 0, 0, mb_host_continue);
    return n;
}

/// Pushes a host function: upvalue 1 is the Swift entry point, upvalue 2 the function's id.
static inline void mb_push_host_function(lua_State *L, mb_host_fn fn, lua_Integer id) {
    lua_pushlightuserdata(L, (void *)fn);
    lua_pushinteger(L, id);
    lua_pushcclosure(L, mb_trampoline, 2);
}

static inline lua_Integer mb_host_function_id(lua_State *L) {
    return lua_tointegerx(L, lua_upvalueindex(2), NULL);
}

static inline int mb_openlibs_cf(lua_State *L) {
    luaL_openlibs(L);
    return 0;
}

/// Message handler for protected set-up calls: adds a traceback to string errors.
static inline int mb_traceback_handler(lua_State *L) {
    const char *msg = lua_tostring(L, 1);
    if (msg == NULL) return 1; // non-string error objects pass through untouched
    luaL_traceback(L, L, msg, 1);
    return 1;
}

/// Calls the function below `nargs` arguments in protected mode with a traceback handler.
static inline int mb_pcall_traceback(lua_State *L, int nargs, int nresults) {
    int base = lua_gettop(L) - nargs;
    lua_pushcfunction(L, mb_traceback_handler);
    lua_insert(L, base);
    int status = lua_pcall(L, nargs, nresults, base);
    lua_remove(L, base);
    return status;
}

/// Opens the standard libraries inside a protected call (an error outside one aborts).
static inline int mb_openlibs(lua_State *L) {
    lua_pushcfunction(L, mb_openlibs_cf);
    return mb_pcall_traceback(L, 0, 0);
}

// Wrappers for Lua's macros, which Swift cannot import.
static inline void mb_pop(lua_State *L, int n) { lua_pop(L, n); }
static inline const char *mb_tolstring(lua_State *L, int i, size_t *len) { return lua_tolstring(L, i, len); }
static inline lua_Integer mb_tointeger(lua_State *L, int i) { return lua_tointegerx(L, i, NULL); }
static inline lua_Number mb_tonumber(lua_State *L, int i) { return lua_tonumberx(L, i, NULL); }
static inline void mb_insert(lua_State *L, int i) { lua_insert(L, i); }
static inline void **mb_extraspace(lua_State *L) { return (void **)lua_getextraspace(L); }
static inline int mb_loadbuffer(lua_State *L, const char *buf, size_t len, const char *name) {
    return luaL_loadbufferx(L, buf, len, name, "t"); // text only: no binary chunks
}
static inline int mb_ref(lua_State *L) { return luaL_ref(L, LUA_REGISTRYINDEX); }
static inline void mb_unref(lua_State *L, int ref) { luaL_unref(L, LUA_REGISTRYINDEX, ref); }
static inline int mb_getref(lua_State *L, int ref) { return lua_rawgeti(L, LUA_REGISTRYINDEX, ref); }
static inline void mb_traceback(lua_State *L, lua_State *co, const char *msg) { luaL_traceback(L, co, msg, 0); }
static inline void mb_gc_collect(lua_State *L) { lua_gc(L, LUA_GCCOLLECT, 0); }
static inline void mb_gc_generational(lua_State *L) { lua_gc(L, LUA_GCGEN, 0, 0); }
static inline int mb_function_line(lua_State *L, int i) {
    lua_Debug ar;
    lua_pushvalue(L, i);
    if (!lua_getinfo(L, ">S", &ar)) return -1;
    return ar.linedefined;
}

#endif
