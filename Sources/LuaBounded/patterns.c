// Lua 5.4's pattern matching (reference manual, section 6.4.1) for string.find, match, gmatch
// and gsub, written so that it counts its steps: a backtracking pattern such as ".-.-.-.-b" on a
// long subject takes hours in Lua's own matcher, where no count hook fires. Results, errors and
// the depth at which a pattern becomes "too complex" are those of Lua 5.4.4's matcher
// (Tests/LuaRuntimeTests/LuaBoundedTests.swift compares the two on a corpus).
//
// Lua strings always carry a '\0' after their last byte; like Lua's matcher, this one reads it
// as a sentinel at the end of the pattern and of the subject.
#define _GNU_SOURCE // memmem
#include <ctype.h>
#include <string.h>
#include "bounded.h"

/// Captures per pattern and nested `match` calls per attempt: Lua's LUA_MAXCAPTURES and
/// MAXCCALLS, so that the same patterns fail with "too many captures" or "pattern too complex".
enum { MAX_CAPTURES = 32, MAX_DEPTH = 200 };

/// The length of a capture still open, and the length that marks a position capture `()`.
enum { CAP_UNFINISHED = -1, CAP_POSITION = -2 };

typedef struct Matcher {
    mb_meter meter;
    const char *src; // the subject is [src, src_end)
    const char *src_end;
    const char *pat_end;
    int depth; // nested `match` calls left
    int level; // captures opened
    struct {
        const char *init;
        ptrdiff_t len; // or CAP_UNFINISHED, CAP_POSITION
    } capture[MAX_CAPTURES];
} Matcher;

static void matcher_init(Matcher *m, lua_State *L, const char *s, size_t ls, const char *p, size_t lp) {
    mb_meter_start(&m->meter, L);
    m->src = s;
    m->src_end = s + ls;
    m->pat_end = p + lp;
}

/// Readies the matcher for an attempt at a new position.
static inline void matcher_reset(Matcher *m) {
    m->level = 0;
    m->depth = MAX_DEPTH;
}

// MARK: Single characters

/// Whether `c` is in the class `%cl` (an upper-case letter is the complement of its lower-case
/// class; any other character stands for itself).
static int class_matches(int c, int cl) {
    int in;
    switch (tolower(cl)) {
    case 'a': in = isalpha(c); break;
    case 'c': in = iscntrl(c); break;
    case 'd': in = isdigit(c); break;
    case 'g': in = isgraph(c); break;
    case 'l': in = islower(c); break;
    case 'p': in = ispunct(c); break;
    case 's': in = isspace(c); break;
    case 'u': in = isupper(c); break;
    case 'w': in = isalnum(c); break;
    case 'x': in = isxdigit(c); break;
    case 'z': in = c == 0; break; // deprecated since 5.2, yet still in 5.4's matcher
    default: return cl == c;
    }
    return isupper(cl) ? !in : in;
}

/// Whether `c` is in the set `[...]` that starts at `p` and whose closing ']' is at `close`.
static int set_matches(int c, const char *p, const char *close) {
    int member = 1; // what finding `c` among the members means
    p++;
    if (*p == '^') {
        member = 0;
        p++;
    }
    for (; p < close; p++) {
        if (*p == '%') {
            p++;
            if (class_matches(c, (unsigned char)*p)) return member;
        } else if (p[1] == '-' && p + 2 < close) { // a range; a '-' first or last is itself
            if ((unsigned char)p[0] <= c && c <= (unsigned char)p[2]) return member;
            p += 2;
        } else if ((unsigned char)*p == c) {
            return member;
        }
    }
    return !member;
}

/// The end of the single-character class that starts at `p`: a character, '.', `%x` or a set.
static const char *class_end(Matcher *m, const char *p) {
    switch (*p++) {
    case '%':
        if (p == m->pat_end) luaL_error(m->meter.L, "malformed pattern (ends with '%%')");
        return p + 1;
    case '[':
        if (*p == '^') p++;
        do { // the first member may be ']' itself
            if (p == m->pat_end) luaL_error(m->meter.L, "malformed pattern (missing ']')");
            if (*p++ == '%' && p < m->pat_end) p++;
        } while (*p != ']');
        return p + 1;
    default:
        return p;
    }
}

/// Whether the character at `s` (none at the subject's end) is in the class [p, ep).
static inline int single_matches(const Matcher *m, const char *s, const char *p, const char *ep) {
    if (s >= m->src_end) return 0;
    int c = (unsigned char)*s;
    switch (*p) {
    case '.': return 1;
    case '%': return class_matches(c, (unsigned char)p[1]);
    case '[': return set_matches(c, p, ep - 1);
    default: return (unsigned char)*p == c;
    }
}

// MARK: Matching

static const char *match(Matcher *m, const char *s, const char *p);

/// `x*` (and `x+` after its first character): the longest run of the class first, then shorter
/// ones, until the rest of the pattern matches.
static const char *expand_greedy(Matcher *m, const char *s, const char *p, const char *ep) {
    ptrdiff_t n = 0;
    while (single_matches(m, s + n, p, ep)) n++;
    mb_meter_step(&m->meter, n); // one pass over the subject at most
    for (; n >= 0; n--) {
        const char *end = match(m, s + n, ep + 1);
        if (end != NULL) return end;
    }
    return NULL;
}

/// `x-`: the shortest run of the class for which the rest of the pattern matches.
static const char *expand_lazy(Matcher *m, const char *s, const char *p, const char *ep) {
    for (;;) {
        const char *end = match(m, s, ep + 1);
        if (end != NULL) return end;
        if (!single_matches(m, s, p, ep)) return NULL;
        s++;
    }
}

static const char *open_capture(Matcher *m, const char *s, const char *p, ptrdiff_t len) {
    if (m->level >= MAX_CAPTURES) luaL_error(m->meter.L, "too many captures");
    m->capture[m->level].init = s;
    m->capture[m->level].len = len;
    m->level++;
    const char *end = match(m, s, p);
    if (end == NULL) m->level--;
    return end;
}

static const char *close_capture(Matcher *m, const char *s, const char *p) {
    int l = m->level - 1;
    while (l >= 0 && m->capture[l].len != CAP_UNFINISHED) l--;
    if (l < 0) luaL_error(m->meter.L, "invalid pattern capture");
    m->capture[l].len = s - m->capture[l].init;
    const char *end = match(m, s, p);
    if (end == NULL) m->capture[l].len = CAP_UNFINISHED;
    return end;
}

/// `%bxy` with `p` at x: from an x at `s` to the y that balances it.
static const char *match_balance(Matcher *m, const char *s, const char *p) {
    if (p >= m->pat_end - 1) luaL_error(m->meter.L, "malformed pattern (missing arguments to '%%b')");
    if (s >= m->src_end || *s != p[0]) return NULL;
    const char *start = s;
    const char *end = NULL;
    size_t open = 1;
    while (++s < m->src_end) {
        if (*s == p[1]) {
            if (--open == 0) {
                end = s + 1;
                break;
            }
        } else if (*s == p[0]) {
            open++;
        }
    }
    mb_meter_step(&m->meter, s - start);
    return end;
}

/// The index of the capture that `%d` (a digit character) refers to in a pattern.
static int capture_index(Matcher *m, int digit) {
    int l = digit - '1';
    if (l < 0 || l >= m->level || m->capture[l].len == CAP_UNFINISHED) {
        luaL_error(m->meter.L, "invalid capture index %%%d", l + 1);
    }
    return l;
}

/// `%1`...`%9`: the same text again (a position capture never matches).
static const char *match_back_reference(Matcher *m, const char *s, int digit) {
    int l = capture_index(m, digit);
    ptrdiff_t len = m->capture[l].len;
    if (len < 0 || m->src_end - s < len || memcmp(m->capture[l].init, s, len) != 0) return NULL;
    mb_meter_step(&m->meter, len / 16);
    return s + len;
}

/// Matches the pattern from `p` on against the subject from `s` on; returns the end of the
/// match or NULL. Backtracking recurses; a pattern item that cannot backtrack loops instead.
static const char *match(Matcher *m, const char *s, const char *p) {
    if (m->depth-- == 0) luaL_error(m->meter.L, "pattern too complex");
    for (;;) {
        mb_meter_step(&m->meter, 1);
        if (p == m->pat_end) break;
        const char *ep;
        switch (*p) {
        case '(':
            s = p[1] == ')' ? open_capture(m, s, p + 2, CAP_POSITION) : open_capture(m, s, p + 1, CAP_UNFINISHED);
            goto done;
        case ')':
            s = close_capture(m, s, p + 1);
            goto done;
        case '$':
            if (p + 1 != m->pat_end) break; // an anchor only at the pattern's end
            if (s != m->src_end) s = NULL;
            goto done;
        case '%':
            switch (p[1]) {
            case 'b':
                s = match_balance(m, s, p + 2);
                if (s == NULL) goto done;
                p += 4;
                continue;
            case 'f': {
                p += 2;
                if (*p != '[') luaL_error(m->meter.L, "missing '[' after '%%f' in pattern");
                ep = class_end(m, p);
                int before = s == m->src ? '\0' : (unsigned char)s[-1];
                int here = s < m->src_end ? (unsigned char)*s : '\0';
                if (!set_matches(before, p, ep - 1) && set_matches(here, p, ep - 1)) {
                    p = ep;
                    continue;
                }
                s = NULL;
                goto done;
            }
            case '0': case '1': case '2': case '3': case '4':
            case '5': case '6': case '7': case '8': case '9':
                s = match_back_reference(m, s, (unsigned char)p[1]);
                if (s == NULL) goto done;
                p += 2;
                continue;
            default:
                break;
            }
            break;
        default:
            break;
        }
        // A single-character class, maybe with a quantifier.
        ep = class_end(m, p);
        if (!single_matches(m, s, p, ep)) {
            if (*ep == '*' || *ep == '?' || *ep == '-') { // none is enough
                p = ep + 1;
                continue;
            }
            s = NULL;
            goto done;
        }
        switch (*ep) {
        case '?': {
            const char *end = match(m, s + 1, ep + 1);
            if (end != NULL) {
                s = end;
                goto done;
            }
            p = ep + 1;
            continue;
        }
        case '+': s = expand_greedy(m, s + 1, p, ep); goto done;
        case '*': s = expand_greedy(m, s, p, ep); goto done;
        case '-': s = expand_lazy(m, s, p, ep); goto done;
        default:
            s++;
            p = ep;
            continue;
        }
    }
done:
    m->depth++;
    return s;
}

// MARK: Captures

/// Capture `i` of the match [s, e) as its text and length, or CAP_POSITION with `*text` at the
/// position. A pattern without captures has the whole match as its capture 0 (only).
static ptrdiff_t capture_text(Matcher *m, int i, const char *s, const char *e, const char **text) {
    if (i >= m->level) {
        if (i != 0) luaL_error(m->meter.L, "invalid capture index %%%d", i + 1);
        *text = s;
        return e - s;
    }
    if (m->capture[i].len == CAP_UNFINISHED) luaL_error(m->meter.L, "unfinished capture");
    *text = m->capture[i].init;
    return m->capture[i].len;
}

static void push_capture(Matcher *m, int i, const char *s, const char *e) {
    const char *text;
    ptrdiff_t len = capture_text(m, i, s, e, &text);
    if (len == CAP_POSITION) {
        lua_pushinteger(m->meter.L, (text - m->src) + 1);
    } else {
        lua_pushlstring(m->meter.L, text, len);
    }
}

/// Pushes the captures of the match [s, e); with s NULL, no whole match when there are none.
static int push_captures(Matcher *m, const char *s, const char *e) {
    int n = (m->level == 0 && s != NULL) ? 1 : m->level;
    luaL_checkstack(m->meter.L, n, "too many captures");
    for (int i = 0; i < n; i++) push_capture(m, i, s, e);
    return n;
}

// MARK: The library functions

/// A 1-based start position as find, match and gmatch read it: negative counts from the end,
/// and any position before the start is the start.
static size_t start_position(lua_Integer position, size_t len) {
    if (position > 0) return (size_t)position;
    if (position == 0 || position < -(lua_Integer)len) return 1;
    return len + (size_t)position + 1;
}

/// Whether `find` may search for the pattern as plain text: it has no character that is special
/// anywhere in a pattern.
static int is_plain(const char *p, size_t lp) {
    for (size_t i = 0; i < lp; i++) {
        switch (p[i]) {
        case '^': case '$': case '*': case '+': case '?': case '.': case '(': case '[': case '%': case '-':
            return 0;
        default:
            break;
        }
    }
    return 1;
}

/// The longest needle `find_plain` compares byte by byte.
#define SHORT_NEEDLE 32

/// The first occurrence of [p, p + lp) in [s, s + ls). Lua's own search (memchr for the first
/// byte, then memcmp) takes time proportional to ls × lp in the worst case: hours for needles of
/// megabytes. For short needles that is still linear, and faster than anything else on the short
/// subjects hooks search; longer ones go to glibc's memmem, which is linear whatever the needle.
static const char *find_plain(const char *s, size_t ls, const char *p, size_t lp) {
    if (lp > SHORT_NEEDLE) return memmem(s, ls, p, lp);
    if (lp == 0) return s;
    if (lp > ls) return NULL;
    const char *last = s + (ls - lp); // the last place it could start
    while (s <= last) {
        const char *at = memchr(s, p[0], last - s + 1);
        if (at == NULL) return NULL;
        if (memcmp(at + 1, p + 1, lp - 1) == 0) return at;
        s = at + 1;
    }
    return NULL;
}

static int find_or_match(lua_State *L, int find) {
    size_t ls, lp;
    const char *s = luaL_checklstring(L, 1, &ls);
    const char *p = luaL_checklstring(L, 2, &lp);
    size_t init = start_position(luaL_optinteger(L, 3, 1), ls) - 1;
    if (init > ls) {
        luaL_pushfail(L);
        return 1;
    }
    if (find && (lua_toboolean(L, 4) || is_plain(p, lp))) {
        const char *at = find_plain(s + init, ls - init, p, lp);
        if (at == NULL) {
            luaL_pushfail(L);
            return 1;
        }
        lua_pushinteger(L, (at - s) + 1);
        lua_pushinteger(L, (at - s) + (lua_Integer)lp);
        return 2;
    }
    int anchored = *p == '^';
    if (anchored) {
        p++;
        lp--;
    }
    Matcher m;
    matcher_init(&m, L, s, ls, p, lp);
    const char *start = s + init;
    do {
        matcher_reset(&m);
        const char *end = match(&m, start, p);
        if (end != NULL) {
            mb_meter_finish(&m.meter);
            if (!find) return push_captures(&m, start, end);
            lua_pushinteger(L, (start - s) + 1);
            lua_pushinteger(L, end - s);
            return push_captures(&m, NULL, NULL) + 2;
        }
    } while (start++ < m.src_end && !anchored);
    mb_meter_finish(&m.meter);
    luaL_pushfail(L);
    return 1;
}

int mb_str_find(lua_State *L) { return find_or_match(L, 1); }
int mb_str_match(lua_State *L) { return find_or_match(L, 0); }

/// Where a gmatch iterator is, as offsets into its subject.
typedef struct GmatchPosition {
    size_t next; // where the next search starts
    size_t last; // the end of the last match (SIZE_MAX: none): an empty match there is skipped
} GmatchPosition;

/// The iterator gmatch returns; upvalues: the subject, the pattern, its GmatchPosition.
static int gmatch_next(lua_State *L) {
    size_t ls, lp;
    const char *s = lua_tolstring(L, lua_upvalueindex(1), &ls);
    const char *p = lua_tolstring(L, lua_upvalueindex(2), &lp);
    GmatchPosition *at = (GmatchPosition *)lua_touserdata(L, lua_upvalueindex(3));
    Matcher m;
    matcher_init(&m, L, s, ls, p, lp);
    for (size_t start = at->next; start <= ls; start++) {
        matcher_reset(&m);
        const char *end = match(&m, s + start, p);
        if (end != NULL && (size_t)(end - s) != at->last) {
            at->next = at->last = end - s;
            mb_meter_finish(&m.meter);
            return push_captures(&m, s + start, end);
        }
    }
    mb_meter_finish(&m.meter);
    return 0;
}

int mb_str_gmatch(lua_State *L) {
    size_t ls, lp;
    luaL_checklstring(L, 1, &ls);
    luaL_checklstring(L, 2, &lp);
    size_t init = start_position(luaL_optinteger(L, 3, 1), ls) - 1;
    lua_settop(L, 2); // the iterator keeps both strings
    GmatchPosition *at = (GmatchPosition *)lua_newuserdatauv(L, sizeof *at, 0);
    at->next = init > ls ? ls + 1 : init;
    at->last = SIZE_MAX;
    lua_pushcclosure(L, gmatch_next, 3);
    return 1;
}

/// Adds gsub's replacement string (argument 3) for the match [s, e): `%0` is the match, `%1`
/// to `%9` its captures, `%%` a '%'.
static void add_replacement_string(Matcher *m, luaL_Buffer *b, const char *s, const char *e) {
    lua_State *L = m->meter.L;
    size_t l;
    const char *r = lua_tolstring(L, 3, &l);
    const char *end = r + l;
    const char *escape;
    while ((escape = memchr(r, '%', end - r)) != NULL) {
        luaL_addlstring(b, r, escape - r);
        int c = (unsigned char)escape[1]; // the '\0' after the string when the '%' is last
        if (c == '%') {
            luaL_addchar(b, '%');
        } else if (c == '0') {
            luaL_addlstring(b, s, e - s);
        } else if (isdigit(c)) {
            const char *text;
            ptrdiff_t len = capture_text(m, c - '1', s, e, &text);
            if (len == CAP_POSITION) {
                lua_pushinteger(L, (text - m->src) + 1);
                luaL_addvalue(b);
            } else {
                luaL_addlstring(b, text, len);
            }
        } else {
            luaL_error(L, "invalid use of '%c' in replacement string", '%');
        }
        r = escape + 2;
    }
    luaL_addlstring(b, r, end - r);
}

/// Adds the replacement of the match [s, e) by a string, a table or a function (argument 3 of
/// type `type`); returns whether the text changed (nil or false keeps the match as it is).
static int add_replacement(Matcher *m, luaL_Buffer *b, const char *s, const char *e, int type) {
    lua_State *L = m->meter.L;
    switch (type) {
    case LUA_TFUNCTION: {
        lua_pushvalue(L, 3);
        int n = push_captures(m, s, e);
        lua_call(L, n, 1);
        break;
    }
    case LUA_TTABLE:
        push_capture(m, 0, s, e);
        lua_gettable(L, 3);
        break;
    default:
        add_replacement_string(m, b, s, e);
        return 1;
    }
    if (!lua_toboolean(L, -1)) {
        lua_pop(L, 1);
        luaL_addlstring(b, s, e - s);
        return 0;
    }
    if (!lua_isstring(L, -1)) return luaL_error(L, "invalid replacement value (a %s)", luaL_typename(L, -1));
    luaL_addvalue(b);
    return 1;
}

int mb_str_gsub(lua_State *L) {
    size_t ls, lp;
    const char *src = luaL_checklstring(L, 1, &ls);
    const char *p = luaL_checklstring(L, 2, &lp);
    int type = lua_type(L, 3);
    lua_Integer max = luaL_optinteger(L, 4, (lua_Integer)ls + 1);
    luaL_argexpected(L, type == LUA_TNUMBER || type == LUA_TSTRING || type == LUA_TFUNCTION || type == LUA_TTABLE,
                     3, "string/function/table");
    int anchored = *p == '^';
    if (anchored) {
        p++;
        lp--;
    }
    luaL_Buffer b;
    luaL_buffinit(L, &b);
    Matcher m;
    matcher_init(&m, L, src, ls, p, lp);
    const char *last = NULL; // the end of the last match: an empty match there is skipped
    lua_Integer n = 0;
    int changed = 0;
    while (n < max) {
        matcher_reset(&m);
        const char *end = match(&m, src, p);
        if (end != NULL && end != last) {
            n++;
            changed |= add_replacement(&m, &b, src, end, type);
            src = last = end;
        } else if (src < m.src_end) {
            luaL_addchar(&b, *src++);
        } else {
            break;
        }
        if (anchored) break;
    }
    mb_meter_finish(&m.meter);
    if (changed) {
        luaL_addlstring(&b, src, m.src_end - src);
        luaL_pushresult(&b);
    } else {
        lua_pushvalue(L, 1);
    }
    lua_pushinteger(L, n);
    return 2;
}
