#include "bounded.h"
#include "LuaBounded.h"

void mb_meter_start(mb_meter *m, lua_State *L) {
    void *ud = NULL;
    lua_getallocf(L, &ud);
    m->L = L;
    m->rt = (mb_runtime *)ud;
    m->credit = MB_CHARGE_EVERY;
    if (m->rt != NULL && m->rt->exceeded != MB_WITHIN_BUDGET) mb_stop(L);
}

void mb_meter_check(mb_meter *m) {
    long long used = MB_CHARGE_EVERY - m->credit;
    m->credit = MB_CHARGE_EVERY;
    if (m->rt != NULL && mb_charge(m->rt, used)) mb_stop(m->L);
}

void mb_meter_finish(mb_meter *m) {
    if (m->rt != NULL) m->rt->instructions += MB_CHARGE_EVERY - m->credit;
    m->credit = MB_CHARGE_EVERY;
}

int mb_open_bounded(lua_State *L) {
    static const luaL_Reg string_functions[] = {
        {"find", mb_str_find}, {"match", mb_str_match}, {"gmatch", mb_str_gmatch}, {"gsub", mb_str_gsub},
        {"rep", mb_str_rep}, {NULL, NULL},
    };
    static const luaL_Reg table_functions[] = {
        {"concat", mb_tab_concat}, {"insert", mb_tab_insert}, {"move", mb_tab_move}, {"remove", mb_tab_remove},
        {"sort", mb_tab_sort}, {NULL, NULL},
    };
    lua_createtable(L, 0, 2);
    luaL_newlib(L, string_functions);
    lua_setfield(L, -2, "string");
    luaL_newlib(L, table_functions);
    lua_setfield(L, -2, "table");
    return 1;
}
