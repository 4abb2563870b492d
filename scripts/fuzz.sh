#!/usr/bin/env bash
# Builds the libFuzzer targets (Debian's clang, ASan + UBSan) into build-fuzz
# and runs each for RUNS inputs or SECONDS, whichever comes first, from the
# corpus kept in fuzz/corpus/<target>; new inputs that add coverage are
# merged back into it. Results: docs/benchmarks.md#fuzzing.
#   scripts/fuzz.sh [RUNS=1000000] [SECONDS=600] [TARGET...]
set -euo pipefail
cd "$(dirname "$0")/.."
RUNS="${1:-1000000}"
SECONDS_MAX="${2:-600}"
shift $(( $# > 2 ? 2 : $# ))
TARGETS=("${@:-spec katib_line jsonl tensor router}")
TARGETS=(${TARGETS[@]})
CLANG="$(command -v clang++-14 || command -v clang++ || true)"
if [ -z "$CLANG" ] || ! ls /usr/lib/llvm-14/lib/clang/*/lib/linux/libclang_rt.fuzzer-x86_64.a >/dev/null 2>&1; then
  echo "fuzz.sh needs Debian's clang and its runtimes: apt-get install clang-14 libclang-rt-14-dev" >&2
  exit 2
fi
BUILD=build-fuzz
if [ ! -f "$BUILD/build.ninja" ]; then
  CXX="$CLANG" cmake -S . -B "$BUILD" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DTRAINYARD_FUZZ=ON \
    -DTRAINYARD_TESTS=OFF -DTRAINYARD_BENCH=OFF -DTRAINYARD_EXAMPLES=OFF -DTRAINYARD_UI=OFF >/dev/null
fi
cmake --build "$BUILD" -j "$(nproc)" --target $(printf 'fuzz_%s ' "${TARGETS[@]}")
for t in "${TARGETS[@]}"; do
  work="$BUILD/corpus-$t"
  mkdir -p "$work"
  echo "== fuzz_$t: up to $RUNS inputs or $SECONDS_MAX s"
  # -rss_limit_mb: an input that makes the process allocate more is a finding.
  "$BUILD/bin/fuzz_$t" -runs="$RUNS" -max_total_time="$SECONDS_MAX" -rss_limit_mb=2048 -timeout=10 \
    -print_final_stats=1 "$work" "fuzz/corpus/$t" 2>&1 | grep -E "^(#[0-9]+ +DONE|stat::|==|SUMMARY|Done)|ERROR|timeout|crash|leak" || true
  # Keep a set-cover-minimised corpus in the repository (what adds coverage).
  "$BUILD/bin/fuzz_$t" -merge=1 -rss_limit_mb=2048 "fuzz/corpus/$t" "$work" >/dev/null 2>&1 || true
  min="$BUILD/min-$t"
  rm -rf "$min" && mkdir -p "$min"
  "$BUILD/bin/fuzz_$t" -set_cover_merge=1 -rss_limit_mb=2048 "$min" "fuzz/corpus/$t" >/dev/null 2>&1 || true
  cp fuzz/corpus/$t/regression-* "$min"/ 2>/dev/null || true
  if [ -n "$(ls -A "$min")" ]; then rm -rf "fuzz/corpus/$t" && cp -r "$min" "fuzz/corpus/$t"; fi
done
