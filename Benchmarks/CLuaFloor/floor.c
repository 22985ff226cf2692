#include "CLuaFloor.h"
#include <lua.h>
#include <lauxlib.h>
#include <lualib.h>
#include <string.h>
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

// Reads a before-hook's data table back as the host must (every member, in any order) into a
// flat buffer: strings copied, numbers and booleans as their raw bytes.
static size_t read_back(lua_State *L, int table, char *buffer, size_t capacity) {
    size_t used = 0;
    lua_pushnil(L);
    while (lua_next(L, table) != 0) {
        size_t length;
        const char *key = lua_tolstring(L, -2, &length);
        if (used + length < capacity) { memcpy(buffer + used, key, length); used += length; }
        switch (lua_type(L, -1)) {
        case LUA_TSTRING: {
            const char *value = lua_tolstring(L, -1, &length);
            if (used + length < capacity) { memcpy(buffer + used, value, length); used += length; }
            break;
        }
        case LUA_TNUMBER: {
            lua_Number number = lua_tonumber(L, -1);
            if (used + sizeof number < capacity) { memcpy(buffer + used, &number, sizeof number); used += sizeof number; }
            break;
        }
        default:
            if (used + 1 < capacity) buffer[used++] = (char)lua_toboolean(L, -1);
        }
        lua_pop(L, 1);
    }
    return used;
}

long long mb_floor_before(long iterations) {
    lua_State *L = luaL_newstate();
    if (L == NULL) return -1;
    luaL_openlibs(L);
    if (luaL_dostring(L, "return function(event) event.data.slug = string.lower(event.data.title) end") != LUA_OK) {
        lua_close(L);
        return -1;
    }
    char buffer[1024];
    size_t total = 0;
    long long start = now_ns();
    for (long i = 0; i < iterations; i++) {
        push_event(L);
        lua_pushvalue(L, 1);
        lua_pushvalue(L, 2);
        if (lua_pcall(L, 1, 0, 0) != LUA_OK) { lua_close(L); return -1; }
        lua_getfield(L, 2, "data");
        total += read_back(L, 3, buffer, sizeof buffer);
        lua_pop(L, 2);
    }
    long long elapsed = now_ns() - start;
    lua_close(L);
    return total > 0 ? elapsed : -1;
}
