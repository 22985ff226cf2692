#include "CLuaFloor.h"
#include <lua.h>
#include <lauxlib.h>
#include <lualib.h>
#include <time.h>

static long long now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

#define SET_STRING(k, v) (lua_pushliteral(L, v), lua_setfield(L, -2, k))

// The same record the Swift side dispatches (see HookDispatchBenchmark.swift).
static void push_event(lua_State *L) {
    lua_createtable(L, 0, 7);
    SET_STRING("id", "evt_01jd3k2m4n5p6q7r8s9t0v");
    SET_STRING("type", "record.created");
    SET_STRING("collection_name", "posts");
    SET_STRING("record_id", "k3j4h5g6f7d8s9a");
    SET_STRING("timestamp", "2026-11-21T23:38:21.123Z");
    lua_createtable(L, 0, 10);
    SET_STRING("title", "Hello, Moonbase");
    SET_STRING("slug", "hello-moonbase");
    SET_STRING("body", "A records backend with drop-in Lua hooks.");
    SET_STRING("author", "ada");
    SET_STRING("status", "published");
    lua_pushinteger(L, 1234); lua_setfield(L, -2, "views");
    lua_pushinteger(L, 56); lua_setfield(L, -2, "likes");
    lua_pushnumber(L, 4.5); lua_setfield(L, -2, "rating");
    lua_pushnumber(L, 0.875); lua_setfield(L, -2, "score");
    lua_pushboolean(L, 1); lua_setfield(L, -2, "published");
    lua_setfield(L, -2, "data");
}

long long mb_floor_dispatch(int handlers, long iterations) {
    lua_State *L = luaL_newstate();
    if (L == NULL) return -1;
    luaL_openlibs(L);
    for (int h = 0; h < handlers; h++) {
        if (luaL_dostring(L, "return function(event) end") != LUA_OK) { lua_close(L); return -1; }
    }
    long long start = now_ns();
    for (long i = 0; i < iterations; i++) {
        push_event(L);
        for (int h = 1; h <= handlers; h++) {
            lua_pushvalue(L, h);
            lua_pushvalue(L, handlers + 1);
            if (lua_pcall(L, 1, 0, 0) != LUA_OK) { lua_close(L); return -1; }
        }
        lua_pop(L, 1);
    }
    long long elapsed = now_ns() - start;
    lua_close(L);
    return elapsed;
}
