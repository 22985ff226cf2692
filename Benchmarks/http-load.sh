#!/usr/bin/env bash
# Load benchmark of the create path: the release server on loopback, driven by wrk, creating
# records with (a) no hooks, (b) 10 no-op after-hooks on that collection, (c) one before-hook that
# changes the data, (d) one no-op after-hook (its event and delivery go through the outbox) and
# (e) the same hook with after-hooks disabled (--no-after-hooks: no outbox). The servers run side
# by side and the cases take turns for several rounds, so machine noise hits all of them alike;
# medians are printed, with the ratios b/a, c/a and the outbox's share of p50, d/e. Then it checks
# that no request failed and that every after-hook counted exactly one call per stored record.
# Beside the rates it prints the server's CPU time per create (user + system, from /proc), which
# moves less than the rates when the machine is noisy, and the same ratios computed from it.
# Last, (d) and (e) run once more at a light, paced load, for p50 as a latency.
#
# With `floor` as the fourth argument it also measures the floor under (b) and (d) for a durable
# after-hook, which needs two parts: storing the event in the write's transaction, and running
# the handlers. Two more builds, in git worktrees, join the same rounds: HEAD (committed code only)
# with the hand-off to the delivery scheduler switched off, (f) 1 hook and (g) 10 hooks whose events
# are stored and never delivered; and commit 24819d6, the last build before the outbox, which ran after-hooks from memory
# and stored nothing: (h) no hooks, (i) 1 hook, (j) 10 hooks. Each part's cost is measured against
# its own build's no-hook case; both added together are the floor. (Two release builds: ~15 min more.)
#
#   bash Benchmarks/http-load.sh [seconds per round] [connections] [rounds] [floor]
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${1:-5}
connections=${2:-32}
rounds=${3:-5}
floor=${4:-}
token=bench-token
command -v wrk >/dev/null || { apt-get update -qq && apt-get install -y -qq wrk >/dev/null; }
swift build -c release --product moonbase >/dev/null 2>&1
bin=$(swift build -c release --show-bin-path)/moonbase
work=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$work"; git worktree prune' EXIT

mkdir -p "$work/a" "$work/b" "$work/c" "$work/d"
echo "on_record_create('posts', function(event) end)" > "$work/d/noop.lua"
for i in $(seq -w 1 10); do echo "on_record_create('posts', function(event) end)" > "$work/b/noop_$i.lua"; done
echo "before_record_create('posts', function(event) event.data.slug = string.lower(event.data.title) end)" > "$work/c/slug.lua"
cat > "$work/post.lua" <<'LUA'
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Bearer bench-token"
wrk.body = '{"title":"Hello Moonbase","slug":null,"body":"A records backend with drop-in Lua hooks.","author":"ada","status":"published","views":1234,"likes":56,"rating":4.5,"score":0.875,"published":true}'
LUA

cases="a b c d e"
# Where a case differs from the default: its binary ($bin) and its hooks folder (its own letter).
declare -A binary hooks=([e]=d)
if [ "$floor" = floor ]; then
  git worktree add --quiet --detach "$work/stored-only" HEAD
  git worktree add --quiet --detach "$work/from-memory" 24819d6
  server="$work/stored-only/Sources/MoonbaseServer/MoonbaseServer.swift"
  python3 - "$server" <<'PY' || exit 1
import sys
path, handoff = sys.argv[1], "store.observeCommittedEvents { [deliveries] event, written in deliveries.accept(event, written) }"
text = open(path).read()
if handoff not in text: sys.exit(f"floor: the hand-off to the scheduler is not in {path} any more")
open(path, "w").write(text.replace(handoff, "store.observeCommittedEvents { _, _ in }"))
PY
  for tree in stored-only from-memory; do
    (cd "$work/$tree" && swift build -c release --product moonbase >"$work/$tree.build" 2>&1) ||
      { tail -20 "$work/$tree.build" >&2; exit 1; }
  done
  cases="$cases f g h i j"
  for case in f g; do binary[$case]=$work/stored-only/.build/release/moonbase; done
  for case in h i j; do binary[$case]=$work/from-memory/.build/release/moonbase; done
  hooks+=([f]=d [g]=b [h]=a [i]=d [j]=b)
fi
declare -A port pid
number=0
for case in $cases; do
  port[$case]=$((8097 + number)) number=$((number + 1)) extra=()
  if [ "$case" = e ]; then extra=(--no-after-hooks); fi
  "${binary[$case]:-$bin}" serve --port "${port[$case]}" --data "$work/data-$case" --hooks-dir "$work/${hooks[$case]:-$case}" \
    --admin-token $token --log-level warning "${extra[@]}" >"$work/$case.log" 2>&1 &
  pid[$case]=$!
done
cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
for case in $cases; do
  url="http://127.0.0.1:${port[$case]}/api/v1"
  for _ in $(seq 1 100); do curl -sf "$url/health" >/dev/null && break; sleep 0.1; done
  curl -sf -H "Authorization: Bearer $token" -X POST "$url/collections" -d '{"name":"posts"}' >/dev/null
done

# Each round starts one case later: a case does not always follow the same one (whose server may
# still be finishing its after-hooks or a checkpoint).
read -ra order <<<"$cases"
for round in $(seq 1 "$rounds"); do
  for turn in "${!order[@]}"; do
    case=${order[$(((turn + round - 1) % ${#order[@]}))]}
    before=$(cpu_ticks "${pid[$case]}")
    wrk -t1 -c"$connections" -d"${seconds}s" --latency -s "$work/post.lua" \
      "http://127.0.0.1:${port[$case]}/api/v1/collections/posts/records" >"$work/$case.$round.wrk"
    sleep 0.2 # queued after-hooks of this round count to it
    echo $(( $(cpu_ticks "${pid[$case]}") - before )) >"$work/$case.$round.cpu"
  done
done
# Light load: (d) and (e) again, paced well below saturation (4 connections, each waiting 0-4 ms
# between requests), where p50 is a request's latency rather than the length of a queue.
cp "$work/post.lua" "$work/paced.lua"
echo 'function delay() return math.random(0, 4) end' >>"$work/paced.lua"
for round in $(seq 1 "$rounds"); do
  for case in d e; do
    wrk -t1 -c4 -d"${seconds}s" --latency -s "$work/paced.lua" \
      "http://127.0.0.1:${port[$case]}/api/v1/collections/posts/records" >"$work/$case.$round.paced"
    sleep 0.2
  done
done
sleep 1 # let queued after-hooks finish

for case in $cases; do
  url="http://127.0.0.1:${port[$case]}/api/v1"
  curl -sf -H "Authorization: Bearer $token" "$url/collections/posts/records?per_page=1" >"$work/$case.page"
  curl -sf -H "Authorization: Bearer $token" "$url/hooks" >"$work/$case.hooks"
done

python3 - "$work" "$rounds" "$connections" "$seconds" "$(getconf CLK_TCK)" "$cases" <<'PY'
import json, re, statistics, sys
work, rounds, connections, seconds, ticks = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4], int(sys.argv[5])
cases = sys.argv[6].split()
labels = {"a": "no hooks", "b": "10 no-op after-hooks", "c": "1 changing before-hook",
          "d": "1 no-op after-hook (outbox)", "e": "same, --no-after-hooks",
          "f": "1 hook, stored only", "g": "10 hooks, stored only",
          "h": "no hooks, 24819d6", "i": "1 hook, memory, 24819d6", "j": "10 hooks, memory, 24819d6"}
def ms(text, label):
    m = re.search(r"^\s*" + label + r"%\s+([\d.]+)(us|ms|s)\b", text, re.M)
    value, unit = float(m.group(1)), m.group(2)
    return value / 1000 if unit == "us" else value * 1000 if unit == "s" else value
print(f"create load: wrk -t1 -c{connections}, {rounds} rounds of {seconds}s per case, 10-field record; medians")
print(f"{'case':<32} {'creates/s':>10} {'p50_ms':>8} {'p99_ms':>8} {'cpu_us':>7} {'records':>9}  checks")
rate, p50s, cpu, failures = {}, {}, {}, 0
for case in cases:
    texts = [open(f"{work}/{case}.{r}.wrk").read() for r in range(1, rounds + 1)]
    rates = [float(re.search(r"Requests/sec:\s+([\d.]+)", t).group(1)) for t in texts]
    counts = [int(re.search(r"(\d+) requests in", t).group(1)) for t in texts]
    answered = sum(counts)
    # Server CPU (user + system) per create, the median over rounds.
    cpu[case] = statistics.median(int(open(f"{work}/{case}.{r}.cpu").read()) * 1e6 / ticks / n
                                  for r, n in zip(range(1, rounds + 1), counts))
    problems = []
    for t in texts:
        if m := re.search(r"Non-2xx or 3xx responses: (\d+)", t): problems.append(f"{m.group(1)} non-2xx")
        if m := re.search(r"Socket errors: (.*)", t): problems.append("socket errors: " + m.group(1))
    stored = json.load(open(f"{work}/{case}.page"))["total_items"]
    calls = [h["calls"] for f in json.load(open(f"{work}/{case}.hooks")) for h in f["handlers"]]
    if case in "efg": calls = [stored for c in calls if c == 0]  # off or never delivered: no call is right
    if any(c != stored for c in calls): problems.append(f"hook calls {sorted(set(calls))} != {stored} records")
    if stored < answered: problems.append(f"{stored} records < {answered} answered")
    failures += len(problems)
    rate[case] = statistics.median(rates)
    p50 = p50s[case] = statistics.median(ms(t, "50") for t in texts)
    p99 = statistics.median(ms(t, "99") for t in texts)
    print(f"{'(' + case + ') ' + labels[case]:<32} {rate[case]:>10.0f} {p50:>8.2f} {p99:>8.2f} {cpu[case]:>7.0f} {stored:>9}  {'; '.join(problems) or 'ok'}")
print(f"ratio b/a = {rate['b'] / rate['a']:.2f}   ratio c/a = {rate['c'] / rate['a']:.2f}   "
      f"outbox p50 cost (d/e - 1) = {100 * (p50s['d'] / p50s['e'] - 1):+.1f}%")
print(f"by server CPU per create: b/a = {cpu['a'] / cpu['b']:.2f}   c/a = {cpu['a'] / cpu['c']:.2f}   "
      f"outbox cost (d/e - 1) = {100 * (cpu['d'] / cpu['e'] - 1):+.1f}%")
if "f" in cases:
    # The floor: what storing the event adds (f, g against this build's e and a) plus what running
    # the handlers from memory adds (i, j against the old build's h), on this build's no-hook case.
    def added(base, *parts): return base + sum(cpu[p] - cpu[q] for p, q in parts)
    d_floor, b_floor = added(cpu["e"], ("f", "e"), ("i", "h")), added(cpu["a"], ("g", "a"), ("j", "h"))
    stored_only, from_memory = 100 * (p50s['f'] / p50s['e'] - 1), 100 * (p50s['i'] / p50s['h'] - 1)
    print(f"floor, p50: stored only f/e {stored_only:+.1f}%, from memory i/h {from_memory:+.1f}%, together "
          f"{stored_only + from_memory:+.1f}%; rates: stored only g/a = {rate['g'] / rate['a']:.2f}, "
          f"from memory j/h = {rate['j'] / rate['h']:.2f}, both = {rate['g'] / rate['a'] * rate['j'] / rate['h']:.2f}")
    print(f"floor, CPU per create: d {d_floor:.0f} us against e {cpu['e']:.0f} ({100 * (d_floor / cpu['e'] - 1):+.1f}%; "
          f"as built {100 * (cpu['d'] / cpu['e'] - 1):+.1f}%), b/a {cpu['a'] / b_floor:.2f} (as built {cpu['a'] / cpu['b']:.2f})")
paced_texts = {case: [open(f"{work}/{case}.{r}.paced").read() for r in range(1, rounds + 1)] for case in "de"}
paced = {case: statistics.median(ms(t, "50") for t in texts) for case, texts in paced_texts.items()}
paced_rate = statistics.median(float(re.search(r"Requests/sec:\s+([\d.]+)", t).group(1)) for t in paced_texts["d"])
paced_failed = [t for texts in paced_texts.values() for t in texts if re.search(r"Non-2xx|Socket errors", t)]
failures += len(paced_failed)
print(f"light load (wrk -c4, 0-4 ms between requests, ~{paced_rate:.0f} creates/s): p50 d {paced['d']:.3f} ms, "
      f"e {paced['e']:.3f} ms, outbox p50 cost (d/e - 1) = {100 * (paced['d'] / paced['e'] - 1):+.1f}%"
      f"  {'ok' if not paced_failed else f'{len(paced_failed)} rounds with failed requests'}")
sys.exit(1 if failures else 0)
PY
