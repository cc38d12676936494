#!/usr/bin/env bash
# Bounded fuzzing of deployclaw's input surface: the migration parser (`parse`), the parser
# plus every built-in gate rule (`lint`), and rollback generation over the parse (`generate`).
# See fuzz/ and SECURITY.md.
#
#   scripts/fuzz.sh [SECONDS]      # SECONDS per target, default 60 (CI: ~3 min of fuzzing)
#
# Installs cargo-fuzz if missing, seeds fuzz/corpus/<target>/ from ../shared/corpus (every .sql
# file; falls back to the repository's own .sql files when that directory is absent), then runs
# each target for SECONDS with the SQL dictionary fuzz/sql.dict. Exits non-zero on the first
# crash, panic, timeout (a single input taking over FUZZ_UNIT_TIMEOUT seconds) or out-of-memory,
# and prints the path of the saved input (fuzz/artifacts/<target>/...). Reproduce with
#   RUSTC_BOOTSTRAP=1 cargo fuzz run <target> fuzz/artifacts/<target>/<file>
#
# Only a stable toolchain is needed: cargo-fuzz passes nightly-only flags (-Z...) to rustc, which
# RUSTC_BOOTSTRAP=1 allows on stable.
#
# Environment:
#   FUZZ_TARGETS        targets to run (default: "parse lint generate")
#   FUZZ_SANITIZER      address | none (default: none — the fuzzed code is safe Rust; ASan halves
#                       the exec rate without finding anything more there)
#   FUZZ_JOBS           parallel libFuzzer workers per target (default 1)
#   FUZZ_MAX_LEN        largest generated input in bytes (default 16384)
#   FUZZ_UNIT_TIMEOUT   seconds one input may take before it counts as a hang (default 10)
#   FUZZ_TARGET_DIR     cargo target dir for the instrumented build (default fuzz/target)
#   DEPLOYCLAW_CORPUS   seed directory (default ../shared/corpus)
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD

secs=${1:-60}
case $secs in '' | *[!0-9]*) echo "usage: $0 [SECONDS]" >&2; exit 2 ;; esac
targets=${FUZZ_TARGETS:-parse lint generate}
sanitizer=${FUZZ_SANITIZER:-none}
jobs=${FUZZ_JOBS:-1}
max_len=${FUZZ_MAX_LEN:-16384}
unit_timeout=${FUZZ_UNIT_TIMEOUT:-10}
target_dir=${FUZZ_TARGET_DIR:-$root/fuzz/target}
seeds=${DEPLOYCLAW_CORPUS:-$root/../shared/corpus}

export RUSTC_BOOTSTRAP=1
export RUST_BACKTRACE=1

if ! cargo fuzz --version >/dev/null 2>&1; then
  echo "fuzz: installing cargo-fuzz" >&2
  cargo install cargo-fuzz --locked
fi

# Seed corpus: every .sql file (not committed: fuzz/corpus is git-ignored). Files over 1 MB (the
# pagila data dump) would only be truncated to FUZZ_MAX_LEN; they are skipped.
for t in $targets; do
  mkdir -p "fuzz/corpus/$t" "fuzz/artifacts/$t"
  if [ -d "$seeds" ]; then
    src=$seeds
  else
    echo "fuzz: $seeds not found, seeding from the repository's own .sql files" >&2
    src=$root
  fi
  n=0
  while IFS= read -r -d '' f; do
    rel=${f#"$src"/}
    cp -f "$f" "fuzz/corpus/$t/seed_${rel//\//__}"
    n=$((n + 1))
  done < <(find "$src" -name '*.sql' -size -1024k -not -path '*/target*' -not -path '*/fuzz/*' -print0)
  echo "fuzz: $t: $n seed files, $(find "fuzz/corpus/$t" -type f | wc -l) corpus entries" >&2
done

status=0
for t in $targets; do
  log=$(mktemp -t "fuzz-$t.XXXXXX.log")
  echo "fuzz: running $t for ${secs}s (sanitizer $sanitizer, log $log)" >&2
  set +e
  cargo fuzz run "$t" \
    --fuzz-dir fuzz \
    --target-dir "$target_dir" \
    --sanitizer "$sanitizer" \
    --debug-assertions \
    --jobs "$jobs" \
    "$root/fuzz/corpus/$t" \
    -- \
    -max_total_time="$secs" \
    -dict="$root/fuzz/sql.dict" \
    -max_len="$max_len" \
    -timeout="$unit_timeout" \
    -rss_limit_mb=4096 \
    -print_final_stats=1 \
    >"$log" 2>&1
  rc=$?
  set -e
  # The last status line and the final stats.
  grep -E '^#[0-9]+.*(DONE|pulse|NEW|REDUCE)' "$log" | tail -n 1 >&2 || true
  grep -E '^stat::(number_of_executed_units|average_exec_per_sec|new_units_added|peak_rss_mb)' "$log" >&2 || true
  if [ $rc -ne 0 ]; then
    status=1
    echo "fuzz: $t FAILED (exit $rc); last 60 lines of $log:" >&2
    tail -n 60 "$log" >&2
    artifact=$(grep -oE '(Test unit|artifact) written to [^ ]+' "$log" | awk '{print $NF}' | tail -n 1)
    if [ -n "$artifact" ]; then
      echo "fuzz: $t: crashing input saved at $artifact" >&2
      echo "fuzz: reproduce: RUSTC_BOOTSTRAP=1 cargo fuzz run --fuzz-dir fuzz $t $artifact" >&2
    fi
  else
    echo "fuzz: $t: no crash in ${secs}s" >&2
  fi
done
exit $status
