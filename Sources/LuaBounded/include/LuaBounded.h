// Bounded replacements for the C functions of Lua's standard library that can run for a long
// time where no count hook fires: the pattern matcher behind string.find, match, gmatch and
// gsub, string.rep, and the table functions that loop over a range. They count their steps
// against the running call's instruction and wall-clock budgets (CLua/shim.h) as Lua code does,
// and otherwise behave as Lua 5.4.4's own functions.
#ifndef MOONBASE_LUA_BOUNDED_H
#define MOONBASE_LUA_BOUNDED_H

struct lua_State;

/// A lua_CFunction: returns a table {string = {find, match, gmatch, gsub, rep},
/// table = {concat, insert, move, remove, sort}}. The functions must run in a state made by
/// `mb_newstate` (they find the budgets through the allocator's user data).
int mb_open_bounded(struct lua_State *L);

#endif
