// The C floor of the hook-dispatch benchmark: what dispatching the SPEC section 4 event to
// no-op handlers costs when written directly against the Lua C API, with nothing of Moonbase.
#ifndef MOONBASE_CLUA_FLOOR_H
#define MOONBASE_CLUA_FLOOR_H

/// Builds the event (5 strings + a 10-field record) and lua_pcalls `handlers` no-op Lua
/// functions with it, `iterations` times. Returns the elapsed nanoseconds, or -1 on error.
long long mb_floor_dispatch(int handlers, long iterations);

/// Builds the same event, lua_pcalls one before-handler that sets `data.slug` from `data.title`,
/// and reads every member of `data` back, `iterations` times. Returns the elapsed nanoseconds,
/// or -1 on error.
long long mb_floor_before(long iterations);

#endif
