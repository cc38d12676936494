#!/usr/bin/env bash
# Reproduces the `## Lint` figures of BENCHMARKS.md: `deployclaw lint` against squawk on the same
# files of ../shared/corpus, in one hyperfine run, release build. Also runs the library benchmark
# (statements/s, MB/s without process start).
#
#   bash scripts/bench-lint.sh            # RUNS=30 WARMUP=3 by default
#
# Installs hyperfine (Debian) and squawk-cli (PyPI, into $VENV) when missing.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
CORPUS=${CORPUS:-$ROOT/../shared/corpus}
VENV=${VENV:-/tmp/deployclaw-bench-venv}
RUNS=${RUNS:-30}
WARMUP=${WARMUP:-3}
SQUAWK_VERSION=${SQUAWK_VERSION:-2.70.0}
OUT=${OUT:-$(mktemp -d)}

command -v hyperfine >/dev/null || { apt-get update -qq && apt-get install -y -qq hyperfine; }
if [ ! -x "$VENV/bin/squawk" ]; then
  python3 -m venv "$VENV"
  "$VENV/bin/pip" install -q "squawk-cli==$SQUAWK_VERSION"
fi
SQUAWK="$VENV/bin/squawk"

# `lint` does not touch AWS: build without the `aws` feature (aws-sdk-rds takes most of a
# release build). FEATURES="" builds the default (with aws) binary instead.
FEATURES=${FEATURES---no-default-features}
cargo build --release --locked -p deployclaw-cli $FEATURES
BIN="${CARGO_TARGET_DIR:-$ROOT/target}/release/deployclaw"

cd "$CORPUS"
# Every up and down script of the four migration projects (not pagila: a pg_dump, not migrations).
find crates.io/migrations docs.rs/migrations harness/migrations chirpstack-application-server/migrations \
  -name '*.sql' | LC_ALL=C sort > "$OUT/files.txt"
FILES=$(wc -l < "$OUT/files.txt")
BYTES=$(tr '\n' '\0' < "$OUT/files.txt" | xargs -0 cat | wc -c)
echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ //')"
echo "deployclaw: $("$BIN" --version)   squawk: $("$SQUAWK" --version)"
echo "corpus: $FILES files, $BYTES bytes"

# Both tools get the same file list on their command line, once per run (xargs -d '\n' keeps
# the crates.io directory whose name has spaces in one argument). Exit codes are 1/2 (findings),
# hence -i.
hyperfine -i --warmup "$WARMUP" --runs "$RUNS" --export-markdown "$OUT/corpus.md" --export-json "$OUT/corpus.json" \
  -n "deployclaw lint --format json" "xargs -d '\n' -a $OUT/files.txt $BIN lint --format json" \
  -n "squawk --reporter json" "xargs -d '\n' -a $OUT/files.txt $SQUAWK --reporter json"

# One large file: pagila's pg_dump schema (52 KB, 500+ statements).
hyperfine -i --warmup "$WARMUP" --runs "$RUNS" --export-markdown "$OUT/pagila.md" \
  -n "deployclaw lint --format json" "$BIN lint --format json pagila/pagila-schema.sql" \
  -n "squawk --reporter json" "$SQUAWK --reporter json pagila/pagila-schema.sql"

# Startup: one small file.
hyperfine -i -N --warmup "$WARMUP" --runs "$RUNS" --export-markdown "$OUT/small.md" \
  -n "deployclaw lint --format json" "$BIN lint --format json docs.rs/migrations/20240221104457_drop_releases_build_status.up.sql" \
  -n "squawk --reporter json" "$SQUAWK --reporter json docs.rs/migrations/20240221104457_drop_releases_build_status.up.sql"

# What each tool reports on the corpus (counts by exit status and findings).
xargs -d '\n' -a "$OUT/files.txt" "$BIN" lint --format json > "$OUT/deployclaw.json" 2> "$OUT/deployclaw.err" || true
xargs -d '\n' -a "$OUT/files.txt" "$SQUAWK" --reporter json > "$OUT/squawk.json" 2> "$OUT/squawk.err" || true
python3 - "$OUT" <<'PY'
import json, sys, collections
out = sys.argv[1]
dc = json.load(open(f"{out}/deployclaw.json"))["findings"]
sq = json.load(open(f"{out}/squawk.json"))
print(f"deployclaw: {len(dc)} findings in {len({f['file'] for f in dc})} files;",
      dict(collections.Counter(f['severity'] for f in dc)))
print(f"squawk:     {len(sq)} findings in {len({f['file'] for f in sq})} files;",
      "syntax-error in:", sorted({f['file'] for f in sq if f['rule_name'] == 'syntax-error'}))
PY
echo "deployclaw stderr lines: $(wc -l < "$OUT/deployclaw.err"), squawk stderr lines: $(wc -l < "$OUT/squawk.err")"

cd "$ROOT"
cargo bench --locked -p deployclaw-cli $FEATURES --bench lint_corpus
echo "results in $OUT"
