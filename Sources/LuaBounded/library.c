// string.rep and the table functions that loop over a range, counting their steps.
//
// Lua's own loop as long as their arguments say, touching no memory the cap could refuse and
// running no Lua code a count hook could stop: `string.rep("", 2^50)` copies nothing 2^50
// times; `table.move({}, 1, 2^50, 2)` moves nils; and a table whose `__len` says 2^50 and whose
// `__index` and `__newindex` are C functions (`rawequal` will do) keeps `table.insert`, `remove`,
// `concat` and `sort` going for days. Here every element visited is a step.
// `table.unpack` needs no such care: its range must fit on the Lua stack (a million values).
#include <limits.h>
#include <string.h>
#include "bounded.h"

/// The longest string string.rep makes (Lua's MAXSIZE): longer ones are "too large".
#define MAX_REP_SIZE ((size_t)INT_MAX)

/// string.rep: an empty result is made at once; any other takes time linear in its size, which
/// the memory cap bounds (the buffer is allocated before anything is copied).
int mb_str_rep(lua_State *L) {
    size_t l, lsep;
    const char *s = luaL_checklstring(L, 1, &l);
    lua_Integer n = luaL_checkinteger(L, 2);
    const char *sep = luaL_optlstring(L, 3, "", &lsep);
    if (n <= 0 || l + lsep == 0) {
        lua_pushliteral(L, "");
        return 1;
    }
    if (l + lsep < l || l + lsep > MAX_REP_SIZE / (size_t)n) return luaL_error(L, "resulting string too large");
    size_t total = (size_t)n * l + (size_t)(n - 1) * lsep;
    mb_meter meter;
    mb_meter_start(&meter, L);
    luaL_Buffer b;
    char *out = luaL_buffinitsize(L, &b, total);
    mb_meter_step(&meter, total / 16); // copying 16 bytes costs about as much as a VM instruction
    for (lua_Integer i = 0; i < n; i++) {
        if (i > 0 && lsep > 0) {
            memcpy(out, sep, lsep);
            out += lsep;
        }
        memcpy(out, s, l);
        out += l;
    }
    luaL_pushresultsize(&b, total);
    mb_meter_finish(&meter);
    return 1;
}

// MARK: Tables

/// What a table function does with its table argument; a value that is not a table must have
/// the matching metamethods.
enum { READS = 1, WRITES = 2, MEASURES = 4 };

static int has_metafield(lua_State *L, const char *name, int metatable) {
    lua_pushstring(L, name);
    return lua_rawget(L, metatable) != LUA_TNIL;
}

/// Checks that argument `arg` is a table or behaves like one as far as `uses` needs.
static void check_table(lua_State *L, int arg, int uses) {
    if (lua_type(L, arg) == LUA_TTABLE) return;
    int top = lua_gettop(L);
    if (lua_getmetatable(L, arg)) {
        int metatable = lua_gettop(L);
        if ((!(uses & READS) || has_metafield(L, "__index", metatable))
            && (!(uses & WRITES) || has_metafield(L, "__newindex", metatable))
            && (!(uses & MEASURES) || has_metafield(L, "__len", metatable))) {
            lua_settop(L, top);
            return;
        }
    }
    luaL_checktype(L, arg, LUA_TTABLE); // raises
}

/// `#t` for the table at argument 1, checked for `uses`.
static lua_Integer table_length(lua_State *L, int uses) {
    check_table(L, 1, uses | MEASURES);
    return luaL_len(L, 1);
}

/// Sets t[to] = t[from] for the table at argument 1.
static void move_element(lua_State *L, lua_Integer from, lua_Integer to) {
    lua_geti(L, 1, from);
    lua_seti(L, 1, to);
}

int mb_tab_insert(lua_State *L) {
    lua_Integer end = luaL_intop(+, table_length(L, READS | WRITES), 1); // the first free position
    lua_Integer position;
    switch (lua_gettop(L)) {
    case 2:
        position = end;
        break;
    case 3: {
        position = luaL_checkinteger(L, 2);
        luaL_argcheck(L, (lua_Unsigned)position - 1u < (lua_Unsigned)end, 2, "position out of bounds");
        mb_meter meter;
        mb_meter_start(&meter, L);
        for (lua_Integer i = end; i > position; i--) {
            mb_meter_step(&meter, 1);
            move_element(L, i - 1, i);
        }
        mb_meter_finish(&meter);
        break;
    }
    default:
        return luaL_error(L, "wrong number of arguments to 'insert'");
    }
    lua_seti(L, 1, position);
    return 0;
}

int mb_tab_remove(lua_State *L) {
    lua_Integer size = table_length(L, READS | WRITES);
    lua_Integer position = luaL_optinteger(L, 2, size);
    if (position != size) {
        // Lua 5.4.4 blames argument 1 for a bad position here (and so does this, for the same message).
        luaL_argcheck(L, (lua_Unsigned)position - 1u <= (lua_Unsigned)size, 1, "position out of bounds");
    }
    lua_geti(L, 1, position); // the result
    mb_meter meter;
    mb_meter_start(&meter, L);
    for (; position < size; position++) {
        mb_meter_step(&meter, 1);
        move_element(L, position + 1, position);
    }
    mb_meter_finish(&meter);
    lua_pushnil(L);
    lua_seti(L, 1, position);
    return 1;
}

int mb_tab_move(lua_State *L) {
    lua_Integer first = luaL_checkinteger(L, 2);
    lua_Integer last = luaL_checkinteger(L, 3);
    lua_Integer to = luaL_checkinteger(L, 4);
    int destination = !lua_isnoneornil(L, 5) ? 5 : 1;
    check_table(L, 1, READS);
    check_table(L, destination, WRITES);
    if (last >= first) {
        luaL_argcheck(L, first > 0 || last < LUA_MAXINTEGER + first, 3, "too many elements to move");
        lua_Integer n = last - first + 1;
        luaL_argcheck(L, to <= LUA_MAXINTEGER - n + 1, 4, "destination wrap around");
        // Front to back unless the ranges overlap with the destination after the source.
        int forward = to > last || to <= first || (destination != 1 && !lua_compare(L, 1, destination, LUA_OPEQ));
        mb_meter meter;
        mb_meter_start(&meter, L);
        for (lua_Integer k = 0; k < n; k++) {
            lua_Integer i = forward ? k : n - 1 - k;
            mb_meter_step(&meter, 1);
            lua_geti(L, 1, first + i);
            lua_seti(L, destination, to + i);
        }
        mb_meter_finish(&meter);
    }
    lua_pushvalue(L, destination);
    return 1;
}

/// Adds t[i] of the table at argument 1, which must be a string or a number.
static void add_field(lua_State *L, luaL_Buffer *b, lua_Integer i) {
    lua_geti(L, 1, i);
    if (!lua_isstring(L, -1)) {
        luaL_error(L, "invalid value (%s) at index %I in table for 'concat'", luaL_typename(L, -1), (LUAI_UACINT)i);
    }
    luaL_addvalue(b);
}

int mb_tab_concat(lua_State *L) {
    lua_Integer last = table_length(L, READS);
    size_t lsep;
    const char *sep = luaL_optlstring(L, 2, "", &lsep);
    lua_Integer i = luaL_optinteger(L, 3, 1);
    last = luaL_optinteger(L, 4, last);
    luaL_Buffer b;
    luaL_buffinit(L, &b);
    mb_meter meter;
    mb_meter_start(&meter, L);
    for (; i < last; i++) {
        mb_meter_step(&meter, 1);
        add_field(L, &b, i);
        luaL_addlstring(&b, sep, lsep);
    }
    if (i == last) add_field(L, &b, i);
    mb_meter_finish(&meter);
    luaL_pushresult(&b);
    return 1;
}

// MARK: Sorting

/// A quicksort of the table at argument 1 through `lua_geti`/`lua_seti` (so metamethods apply,
/// as in Lua's), comparing with the function at argument 2 or `<`. Like Lua's sort it is not
/// stable and leaves the order of equal elements unspecified; unlike it, it counts a step per
/// comparison.
typedef struct Sorter {
    lua_State *L;
    mb_meter meter;
    int by_function;
} Sorter;

/// Whether the value at `a` sorts before the one at `b` (absolute indices).
static int sorts_before(Sorter *sorter, int a, int b) {
    lua_State *L = sorter->L;
    mb_meter_step(&sorter->meter, 1);
    if (!sorter->by_function) return lua_compare(L, a, b, LUA_OPLT);
    lua_pushvalue(L, 2);
    lua_pushvalue(L, a);
    lua_pushvalue(L, b);
    lua_call(L, 2, 1);
    int before = lua_toboolean(L, -1);
    lua_pop(L, 1);
    return before;
}

static void swap_elements(lua_State *L, lua_Integer i, lua_Integer j) {
    lua_geti(L, 1, i);
    lua_geti(L, 1, j);
    lua_seti(L, 1, i);
    lua_seti(L, 1, j);
}

/// Swaps t[i] and t[j] if t[j] sorts before t[i].
static void order_pair(Sorter *sorter, lua_Integer i, lua_Integer j) {
    lua_State *L = sorter->L;
    lua_geti(L, 1, i);
    lua_geti(L, 1, j);
    int top = lua_gettop(L);
    if (sorts_before(sorter, top, top - 1)) {
        lua_seti(L, 1, i);
        lua_seti(L, 1, j);
    } else {
        lua_pop(L, 2);
    }
}

/// Whether t[i] compared with the pivot (at `pivot`) sorts before it (`element_first`) or after it.
static int compare_with_pivot(Sorter *sorter, lua_Integer i, int pivot, int element_first) {
    lua_geti(sorter->L, 1, i);
    int element = lua_gettop(sorter->L);
    int result = element_first ? sorts_before(sorter, element, pivot) : sorts_before(sorter, pivot, element);
    lua_pop(sorter->L, 1);
    return result;
}

/// Sorts t[lo..hi]: the median of three is the pivot, the smaller side recurses and the larger
/// one loops, so the recursion is at most log2(n) deep.
static void sort_range(Sorter *sorter, lua_Integer lo, lua_Integer hi) {
    lua_State *L = sorter->L;
    while (hi > lo) {
        lua_Integer mid = lo + (hi - lo) / 2;
        order_pair(sorter, lo, mid);
        order_pair(sorter, mid, hi);
        order_pair(sorter, lo, mid);
        if (hi - lo <= 2) return;
        // t[lo] <= pivot <= t[hi]: they stop the scans below, unless the order function
        // contradicts itself, which is an error rather than a read past the range.
        swap_elements(L, mid, hi - 1);
        lua_geti(L, 1, hi - 1);
        int pivot = lua_gettop(L);
        lua_Integer i = lo, j = hi - 1;
        for (;;) {
            while (compare_with_pivot(sorter, ++i, pivot, 1)) {
                if (i == hi - 1) luaL_error(L, "invalid order function for sorting");
            }
            while (compare_with_pivot(sorter, --j, pivot, 0)) {
                if (j == lo) luaL_error(L, "invalid order function for sorting");
            }
            if (j <= i) break;
            swap_elements(L, i, j);
        }
        lua_pop(L, 1);
        swap_elements(L, i, hi - 1); // the pivot to its place
        if (i - lo < hi - i) {
            sort_range(sorter, lo, i - 1);
            lo = i + 1;
        } else {
            sort_range(sorter, i + 1, hi);
            hi = i - 1;
        }
    }
}

int mb_tab_sort(lua_State *L) {
    lua_Integer n = table_length(L, READS | WRITES);
    if (n > 1) {
        luaL_argcheck(L, n < INT_MAX, 1, "array too big");
        if (!lua_isnoneornil(L, 2)) luaL_checktype(L, 2, LUA_TFUNCTION);
        lua_settop(L, 2);
        Sorter sorter = {.L = L, .by_function = !lua_isnil(L, 2)};
        mb_meter_start(&sorter.meter, L);
        sort_range(&sorter, 1, n);
        mb_meter_finish(&sorter.meter);
    }
    return 0;
}
