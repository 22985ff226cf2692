// What the bounded library functions share: the step meter that charges their work to the
// running call's budgets.
#ifndef MOONBASE_LUA_BOUNDED_INTERNAL_H
#define MOONBASE_LUA_BOUNDED_INTERNAL_H

// SwiftPM gives a C target no include path to a system-library target's folder (and no clang
// modules on Linux), so the shim that defines the budgets is included by its path.
#include "../../CLua/shim.h"

/// How many steps a meter takes between two checks of the budgets: a check reads the clock,
/// which costs about as much as a few dozen steps.
#define MB_CHARGE_EVERY 1024

/// Counts the steps of one call of a bounded function. Every MB_CHARGE_EVERY steps they are
/// added to the call's instruction count and both budgets checked, as the count hook does for Lua
/// code; once a budget is exceeded the call ends with "hook exceeded its time budget" (mb_stop).
typedef struct mb_meter {
    lua_State *L;
    mb_runtime *rt; // NULL in a state not made by mb_newstate: no budgets
    long long credit; // steps left before the next check
} mb_meter;

/// Starts metering a call on `L`; stops the call at once if its budget is already exceeded (a
/// script that caught the budget error gets no further work done in C).
void mb_meter_start(mb_meter *m, lua_State *L);

/// Charges the steps taken since the last check; stops the call if a budget is exceeded.
void mb_meter_check(mb_meter *m);

/// Counts `n` steps.
static inline void mb_meter_step(mb_meter *m, long long n) {
    if ((m->credit -= n) <= 0) mb_meter_check(m);
}

/// Adds the steps not yet charged to the call's count (the count hook checks them soon enough).
void mb_meter_finish(mb_meter *m);

// The bounded functions (patterns.c, library.c), as lua_CFunctions.
int mb_str_find(lua_State *L);
int mb_str_match(lua_State *L);
int mb_str_gmatch(lua_State *L);
int mb_str_gsub(lua_State *L);
int mb_str_rep(lua_State *L);
int mb_tab_concat(lua_State *L);
int mb_tab_insert(lua_State *L);
int mb_tab_move(lua_State *L);
int mb_tab_remove(lua_State *L);
int mb_tab_sort(lua_State *L);

#endif
