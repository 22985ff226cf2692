#!/usr/bin/env bash
# Runs the libFuzzer targets (linked with lld, Fuzz/toolset.json: gold fails on their debug info) for MINUTES minutes each (default 5), with the address sanitizer:
#   bash scripts/fuzz.sh [MINUTES] [TARGET…]      targets: FuzzJSONParser FuzzLuaBridge FuzzRecordQuery
# Each starts from the committed seed corpus (Fuzz/Corpus/json, Fuzz/Corpus/query) and grows a working
# corpus in .build-fuzz/corpus. A failing input is saved beside the seeds as crash-<target>-<hash>; commit
# it with the fix: the test suite replays every file there (FuzzCorpusTests).
set -euo pipefail
cd "$(dirname "$0")/.."
minutes=${1:-5}
shift || true
targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=(FuzzJSONParser FuzzLuaBridge FuzzRecordQuery)
scratch=$PWD/.build-fuzz
swift build -c release --package-path Fuzz --scratch-path "$scratch" --toolset Fuzz/toolset.json \
  -Xswiftc -sanitize=fuzzer,address -Xcc -fsanitize=fuzzer-no-link,address
status=0
for target in "${targets[@]}"; do
  corpus=$scratch/corpus/$target
  seeds=Fuzz/Corpus/json
  [ "$target" = FuzzRecordQuery ] && seeds=Fuzz/Corpus/query
  mkdir -p "$corpus"
  echo "== $target for $minutes min"
  if ! "$scratch/release/$target" "$corpus" "$seeds" -max_total_time=$((minutes * 60)) \
       -max_len=65536 -timeout=10 -rss_limit_mb=4096 -artifact_prefix="$seeds/crash-$target-" -print_final_stats=1; then
    echo "$target found a failing input: see $seeds/crash-$target-*" >&2
    status=1
  fi
done
exit $status
