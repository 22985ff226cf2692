#!/usr/bin/env bash
# Load benchmark of the create path (issue 3): the release server on loopback, driven by wrk,
# creating records with (a) no hooks, (b) 10 no-op after-hooks on that collection, (c) one
# before-hook that changes the data. Prints creates/s, p50/p99 latency and the ratios b/a, c/a,
# then checks that no request failed and that every after-hook counted one call per record.
#
#   bash Benchmarks/http-load.sh [seconds] [connections]
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${1:-10}
connections=${2:-32}
port=8097
token=bench-token
command -v wrk >/dev/null || { apt-get update -qq && apt-get install -y -qq wrk >/dev/null; }
swift build -c release --product moonbase >/dev/null
bin=$(swift build -c release --show-bin-path)/moonbase
work=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$work"' EXIT

mkdir -p "$work/none" "$work/after" "$work/before"
for i in $(seq -w 1 10); do echo "on_record_create('posts', function(event) end)" > "$work/after/noop_$i.lua"; done
echo "before_record_create('posts', function(event) event.data.slug = string.lower(event.data.title) end)" > "$work/before/slug.lua"
cat > "$work/post.lua" <<'LUA'
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Bearer bench-token"
wrk.body = '{"title":"Hello Moonbase","slug":null,"body":"A records backend with drop-in Lua hooks.","author":"ada","status":"published","views":1234,"likes":56,"rating":4.5,"score":0.875,"published":true}'
LUA

api() { curl -s -H "Authorization: Bearer $token" "$@"; }

run_case() { # name hooks-dir → "creates/s p50_ms p99_ms"
  local name=$1 hooks=$2 data="$work/data-$1"
  "$bin" serve --port $port --data "$data" --hooks-dir "$hooks" --admin-token $token --log-level warning >"$work/$name.log" 2>&1 &
  local pid=$!
  for _ in $(seq 1 100); do curl -sf "http://127.0.0.1:$port/api/v1/health" >/dev/null && break; sleep 0.1; done
  api -X POST "http://127.0.0.1:$port/api/v1/collections" -d '{"name":"posts"}' >/dev/null
  wrk -t1 -c"$connections" -d"${seconds}s" --latency -s "$work/post.lua" "http://127.0.0.1:$port/api/v1/collections/posts/records" >"$work/$name.wrk"
  sleep 1 # let queued after-hooks finish
  local stored listing
  stored=$(api "http://127.0.0.1:$port/api/v1/collections/posts/records?per_page=1" | python3 -c 'import json,sys; print(json.load(sys.stdin)["total_items"])')
  listing=$(api "http://127.0.0.1:$port/api/v1/hooks")
  kill -TERM $pid; wait $pid 2>/dev/null || true
  python3 - "$name" "$work/$name.wrk" "$stored" "$listing" <<'PY'
import json, re, sys
name, path, stored, listing = sys.argv[1], sys.argv[2], int(sys.argv[3]), json.loads(sys.argv[4])
text = open(path).read()
def ms(label):
    m = re.search(r"^\s*" + label + r"%\s+([\d.]+)(us|ms|s)", text, re.M)
    value, unit = float(m.group(1)), m.group(2)
    return value / 1000 if unit == "us" else value * 1000 if unit == "s" else value
rate = float(re.search(r"Requests/sec:\s+([\d.]+)", text).group(1))
requests = int(re.search(r"(\d+) requests in", text).group(1))
bad = re.search(r"Non-2xx or 3xx responses: (\d+)", text)
errors = re.search(r"Socket errors: (.*)", text)
problems = []
if bad: problems.append(f"{bad.group(1)} non-2xx responses")
if errors: problems.append("socket errors: " + errors.group(1))
calls = [h["calls"] for f in listing for h in f["handlers"] if h["event"] == "record.created"]
if any(c != stored for c in calls): problems.append(f"after-hook calls {calls} != {stored} records stored")
if stored < requests: problems.append(f"{stored} records stored < {requests} requests answered")
print(f"{rate:.0f} {ms('50'):.2f} {ms('99'):.2f} {stored} {';'.join(problems) or 'ok'}")
PY
}

printf "create load: wrk -t1 -c%s -d%ss, 10-field record\n" "$connections" "$seconds"
printf "%-28s %10s %8s %8s %9s  %s\n" case creates/s p50_ms p99_ms records checks
declare -A rate
for case in "a:none:no hooks" "b:after:10 no-op after-hooks" "c:before:1 changing before-hook"; do
  IFS=: read -r key dir label <<<"$case"
  read -r r p50 p99 stored checks < <(run_case "$key" "$work/$dir")
  rate[$key]=$r
  printf "%-28s %10s %8s %8s %9s  %s\n" "($key) $label" "$r" "$p50" "$p99" "$stored" "$checks"
done
python3 -c "import sys; a,b,c=map(float,sys.argv[1:]); print(f'ratio b/a = {b/a:.2f}   ratio c/a = {c/a:.2f}')" "${rate[a]}" "${rate[b]}" "${rate[c]}"
