/// The corpus of `LuaBoundedTests.boundedFunctionsMatchLuasOwn`: a Lua chunk that gets the table
/// `mb_open_bounded` returns, compares each bounded function with Lua's own of the same state on
/// hand-written edge cases and generated pattern/subject pairs, and returns the number of
/// comparisons and a report of the differences ("" when none).
let boundedCorpus = #"""
local bounded = ...
local own = { string = string, table = table }
local pack, select, type, tostring, pcall = table.pack, select, type, tostring, pcall
local failures, compared = {}, 0

-- A call site of its own, so that both functions are named alike in argument errors.
local function invoke(f, ...) return pack(f(...)) end

local function show(value)
  if type(value) == "string" then
    return #value > 60 and string.format("%q...(%d bytes)", value:sub(1, 60), #value) or string.format("%q", value)
  end
  if type(value) == "table" then
    local parts = {}
    for i = 1, value.n or #value do parts[#parts + 1] = show(value[i]) end
    return "{" .. table.concat(parts, ", ") .. "}"
  end
  return tostring(value)
end

local function same(a, b)
  if type(a) ~= "table" or type(b) ~= "table" then return a == b end
  if (a.n or #a) ~= (b.n or #b) then return false end
  for i = 1, a.n or #a do if not same(a[i], b[i]) then return false end end
  return true
end

local function check(label, expected, actual)
  compared = compared + 1
  if not same(expected, actual) and #failures < 40 then
    failures[#failures + 1] = label .. "\n  lua:     " .. show(expected) .. "\n  bounded: " .. show(actual)
  end
end

-- Runs `body(library)` with Lua's library and with the bounded one and compares what it returns
-- (or the error it raises).
local function compare(label, body)
  check(label, pack(pcall(body, own)), pack(pcall(body, bounded)))
end

local replacements = {
  "%0", "<%1>", "[%2]", "%%", "x", "", "%", "%a", "%1%1", 7,
  function(...) return table.concat({ ... }, "|") end,
  function(a) if #tostring(a) % 2 == 0 then return nil end return "<" .. tostring(a) .. ">" end,
  function() return false end,
  function() return {} end,
  { a = "A", b = false, ab = 1, ["()"] = "P", [1] = "one" },
  { a = {} },
}
local limits = { nil, 0, 1, 2, -1, 2.5 }
local inits = { nil, 1, 0, 2, -1, -3, 5, 100, -100 }

local function compare_all(s, p, k)
  local init = inits[k % #inits + 1]
  local label = string.format("subject %s pattern %s init %s", show(s), show(p), tostring(init))
  compare("find " .. label, function(lib) return invoke(lib.string.find, s, p, init) end)
  compare("find plain " .. label, function(lib) return invoke(lib.string.find, s, p, init, k % 2 == 0) end)
  compare("match " .. label, function(lib) return invoke(lib.string.match, s, p, init) end)
  compare("gmatch " .. label, function(lib)
    local results, next_match = {}, lib.string.gmatch(s, p, init)
    repeat
      local captures = pack(next_match())
      results[#results + 1] = captures
    until captures[1] == nil or #results > 40
    return results
  end)
  local replacement = replacements[k % #replacements + 1]
  local limit = limits[(k // 3) % #limits + 1]
  compare("gsub " .. label .. " repl " .. show(replacement) .. " max " .. tostring(limit), function(lib)
    return invoke(lib.string.gsub, s, p, replacement, limit)
  end)
end

-- Hand-written edge cases: anchors, captures, %b, %f, positions, quantifiers, malformed patterns.
local cases = {
  { "hello world", "o w" }, { "hello", "l+" }, { "hello", "^h" }, { "hello", "^e" }, { "hello", "o$" },
  { "hello", "l$" }, { "a$b", "a$b" }, { "a$", "$" }, { "", "" }, { "", "^$" }, { "abc", "" },
  { "abc", "^" }, { "^abc", "^^a" }, { "aaa", "a-" }, { "aaa", "a-$" }, { "aaab", "a*b" }, { "b", "a*b" },
  { "aaab", "a+b" }, { "b", "a+b" }, { "ab", "a?b" }, { "b", "a?b" }, { "aab", "a?ab" },
  { "key = value", "(%w+)%s*=%s*(%w+)" }, { "hello", "()ll()" }, { "hello", "(h)(e)(l)(l)(o)" },
  { "abcabc", "(abc)%1" }, { "abcabd", "(abc)%1" }, { "xx", "(x)%1" }, { "a", "()%1" },
  { "f(a(b)c)d", "%b()" }, { "f(a(b)c", "%b()" }, { "[[x]]", "%b[]" }, { "aaa", "%baa" }, { "x", "%b" },
  { "x", "%bx" }, { "THE (quick) fox", "%f[%a]%a+" }, { "THE (quick) fox", "%f[%A]" }, { "hello", "%f[%l]" },
  { "x", "%f" }, { "x", "%fx" }, { "x", "%f[x" }, { "a.b", "%." }, { "a%b", "%%" }, { "x", "%" },
  { "x", "[a" }, { "x", "[" }, { "x", "[]" }, { "]", "[]]" }, { "a", "[^]]" }, { "]", "[^]]" },
  { "-", "[a-]" }, { "-", "[-a]" }, { "b", "[a-c]" }, { "d", "[^a-c]" }, { "%", "[%%]" }, { "5", "[%d]" },
  { "x", "[%]" }, { "x", "[%" }, { "a", "(a" }, { "a", "a)" }, { "a", "(()a" }, { "a", "%0" }, { "a", "(a)%2" },
  { "a", "(a%1)" }, { "a", "%1" }, { "aaa", string.rep("a?", 199) }, { "aaa", string.rep("a?", 200) },
  { string.rep("a", 300), string.rep("a?", 300) }, { string.rep("a", 199), string.rep("a?", 200) },
  { string.rep("a", 200), string.rep("a?", 200) }, { string.rep("a", 198), string.rep("(a)?", 10) .. string.rep("a?", 189) }, { "a", string.rep("()", 32) }, { "a", string.rep("()", 33) },
  { "a", string.rep("(", 32) .. "a" .. string.rep(")", 32) }, { "one two  three", "%s*" }, { "hello world", "o*" },
  { "abc", ".-" }, { "abc", ".-$" }, { "abc", "(.-)c" }, { "a\0b", "%z" }, { "a\0b", "\0" }, { "a\0b", "[\0]" },
  { "a\0b", "%c" }, { "tab\there", "%s" }, { "UPPER lower", "%u+" }, { "UPPER lower", "%L+" }, { "0x1F", "%x+" },
  { "a,b;c", "%p" }, { "a,b;c", "[%p%s]" }, { "\200\201", "[\128-\255]+" }, { "é", "[\128-\255]" },
  { "hello-world_2024", "^[%w_-]+$" }, { "user@example.com", "^[%w._%%+-]+@[%w.-]+%.%a%a+$" },
  { "not an email", "^[%w._%%+-]+@[%w.-]+%.%a%a+$" }, { "  trim me  ", "^%s*(.-)%s*$" },
  { "2024-01-31", "^(%d%d%d%d)-(%d%d)-(%d%d)$" }, { "a.b.c", "[^.]+" }, { "x=1&y=2", "([^&=]+)=([^&=]*)" },
  { string.rep("ab", 50) .. "x", string.rep("ab", 20) .. "x" }, { string.rep("ab", 50), string.rep("ab", 20) .. "x" },
  { string.rep("ab", 50), string.rep("ab", 16) }, { "abc", "abcd" }, { "x", string.rep("x", 40) },
  { "aaa", "a-b" }, { "aaa", "()a*()" }, { "ab", "a*?" }, { "ab", "a+?" }, { "abc", "b*" }, { "abc", "^b*" },
}
for k, case in ipairs(cases) do
  for j = 0, 5 do compare_all(case[1], case[2], k * 7 + j) end
end

-- Generated pairs from pattern pieces and subject characters.
local pieces = {
  "a", "b", "c", ".", "%a", "%d", "%s", "%w", "%p", "%l", "%u", "%x", "%c", "%g", "%A", "%S", "%W", "%D",
  "[ab]", "[^a]", "[a-c]", "[%d_]", "[]]", "[^]a]", "[a-]", "%b()", "%bab", "%f[%w]", "%f[%W]", "%f[a]",
  "(", ")", "()", "%1", "%2", "-", "*", "+", "?", "^", "$", "%%", "%.", "%(", " ", "_", "1",
}
local rare = { "%", "[", "%b", "%f", "%0", "[%", "%9" }
local alphabet = { "a", "a", "b", "b", "c", "(", ")", "1", "2", " ", "_", ".", "%", "-", "]", "A", "\0", "\n", "ab" }
math.randomseed(18)
local random = math.random
for k = 1, 1500 do
  local parts = {}
  for i = 1, random(1, 6) do
    parts[i] = random(40) == 1 and rare[random(#rare)] or pieces[random(#pieces)]
  end
  local subject = {}
  for i = 1, random(0, 14) do subject[i] = alphabet[random(#alphabet)] end
  compare_all(table.concat(subject), table.concat(parts), k)
end

-- string.rep, with empty strings, separators and sizes Lua refuses.
for _, args in ipairs({ { "ab", 3 }, { "ab", 3, "," }, { "", 5 }, { "", 5, "" }, { "", 3, "-" }, { "x", 0 },
  { "x", -1 }, { "x", 1, "," }, { "x", 2 ^ 40 }, { "xy", 2 ^ 31 }, { "x", 2.5 }, { nil, 1 }, { "x" }, { 12, 2 },
  { "x", 3, 4 } }) do
  compare("rep " .. show(args), function(lib) return invoke(lib.string.rep, args[1], args[2], args[3]) end)
end

-- The table functions: results and the table afterwards, on plain tables and on proxies.
local function proxy(values)
  local store = { table.unpack(values) }
  return setmetatable({}, {
    __index = function(_, i) return store[i] end,
    __newindex = function(_, i, v) store[i] = v end,
    __len = function() return #store end,
  }), store
end
local table_cases = {
  { "insert", { 1, 2, 3 }, { "x" } }, { "insert", { 1, 2, 3 }, { 1, "x" } }, { "insert", { 1, 2, 3 }, { 4, "x" } },
  { "insert", { 1, 2, 3 }, { 5, "x" } }, { "insert", { 1, 2, 3 }, { 0, "x" } }, { "insert", {}, { 1, "x" } },
  { "insert", { 1 }, { 1, "x", "y" } }, { "insert", { 1 }, {} }, { "insert", { 1 }, { 1.5, "x" } },
  { "remove", { 1, 2, 3 }, {} }, { "remove", { 1, 2, 3 }, { 1 } }, { "remove", { 1, 2, 3 }, { 3 } },
  { "remove", { 1, 2, 3 }, { 4 } }, { "remove", { 1, 2, 3 }, { 5 } }, { "remove", {}, {} }, { "remove", {}, { 0 } },
  { "remove", {}, { 3 } }, { "remove", { 1, 2, 3 }, { -1 } },
  { "concat", { 1, 2, 3 }, {} }, { "concat", { "a", "b", "c" }, { ", " } }, { "concat", { "a", "b", "c" }, { "-", 2 } },
  { "concat", { "a", "b", "c" }, { "-", 2, 3 } }, { "concat", { "a", "b", "c" }, { "-", 3, 2 } },
  { "concat", { "a", {}, "c" }, {} }, { "concat", { "a", "b" }, { "", 1, 5 } }, { "concat", {}, {} },
  { "concat", { 1.5, 2 }, { 3 } },
  { "move", { 1, 2, 3, 4, 5 }, { 1, 3, 2 } }, { "move", { 1, 2, 3, 4, 5 }, { 2, 5, 1 } },
  { "move", { 1, 2, 3 }, { 1, 3, 3 } }, { "move", { 1, 2, 3 }, { 2, 1, 1 } }, { "move", { 1, 2, 3 }, { 1, 3, 1, {} } },
  { "move", { 1, 2, 3 }, { -1, math.maxinteger, 1 } }, { "move", { 1, 2, 3 }, { 1, 3, math.maxinteger } },
  { "move", { 1, 2, 3 }, { 1, "x", 2 } },
  { "sort", { 3, 1, 2 }, {} }, { "sort", { 3, 1, 2, 5, 4, 9, 7, 8, 6, 0 }, {} }, { "sort", { "b", "a", "c" }, {} },
  { "sort", { 1, "x" }, {} }, { "sort", { 3, 1, 2 }, { 5 } }, { "sort", {}, {} }, { "sort", { 1 }, {} },
}
for _, case in ipairs(table_cases) do
  local name, values, args = case[1], case[2], case[3]
  for _, kind in ipairs({ "plain", "proxy", "bad" }) do
    compare(name .. " " .. kind .. " " .. show(values) .. " " .. show(args), function(lib)
      local t, store
      if kind == "plain" then t = { table.unpack(values) }; store = t
      elseif kind == "proxy" then t, store = proxy(values)
      else t = #values > 0 and "not a table" or 42; store = {} end
      local result = invoke(lib.table[name], t, table.unpack(args, 1, #args))
      return result, store
    end)
  end
end

-- Sorting: the bounded sort puts equal elements in an order of its own, so the results are
-- compared sorted, on random arrays, with and without an order function.
for k = 1, 300 do
  local values = {}
  for i = 1, random(0, 120) do values[i] = random(k % 3 == 0 and 5 or 1000) end
  local by = k % 2 == 0 and function(a, b) return a > b end or nil
  compare("sort " .. #values .. " values", function(lib)
    local t = { table.unpack(values) }
    lib.table.sort(t, by)
    return t
  end)
end
-- An order function that contradicts itself ends with an error or an order of some kind, never a crash.
for k = 1, 50 do
  local t = {}
  for i = 1, 50 do t[i] = random(10) end
  pcall(bounded.table.sort, t, function() return random(2) == 1 end)
  pcall(bounded.table.sort, t, function() return true end)
end

return compared, table.concat(failures, "\n")
"""#
