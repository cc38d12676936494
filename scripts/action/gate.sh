#!/usr/bin/env bash
# The gate step of the deployclaw GitHub Action (action.yml), runnable anywhere.
#
# Lints the migrations changed since a base ref and, when a target is configured, runs
# `validate-migration` on each of them. Writes the outputs (gate, risk, report, exit-code, ...)
# to $GITHUB_OUTPUT, the SARIF files to $DC_REPORT_DIR/sarif/ and the pull-request comment body
# to $DC_REPORT_DIR/comment.md. Always exits 0 when it ran (the exit code of the gate is the
# `exit-code` output; scripts/action/finish.sh fails the job with it), so the SARIF upload and
# the comment still happen on a red gate. Exits 3 on a usage error of its own.
#
# Environment (the action's inputs):
#   DC_BIN             deployclaw binary [deployclaw]
#   DC_MIGRATIONS      migrations directory, relative to the repository [migrations]
#   DC_BASE_REF        base ref [origin/$GITHUB_BASE_REF on a pull request, else HEAD~1]
#   DC_CHANGED_MODE    git-diff (the script lists the changed .sql files itself) or
#                      changed-since (`deployclaw lint --changed-since REF`) [git-diff]
#   DC_TARGET_DB       target for validate-migration (URL or libpq pairs; secrets via env)
#   DC_TOPOLOGY        fleet file for validate-migration (instead of DC_TARGET_DB)
#   DC_TENANT_SCHEMAS  --tenant-schemas pattern for validate-migration
#   DC_VALIDATE_ARGS   further validate-migration arguments (split on spaces)
#   DC_CACHE_DIR       --cache-dir for validate-migration (the shadow's initdb template and
#                      calibration; the action keeps it between jobs with actions/cache)
#   DC_ALLOW_YELLOW    true: a yellow gate exits 0
#   DC_REPORT_DIR      where reports go [deployclaw-report]
#   DC_MARKER          hidden marker of the sticky comment [<!-- deployclaw-gate -->]
set -uo pipefail

bin=${DC_BIN:-deployclaw}
dir=${DC_MIGRATIONS:-migrations}
mode=${DC_CHANGED_MODE:-git-diff}
out_dir=${DC_REPORT_DIR:-deployclaw-report}
marker=${DC_MARKER:-<!-- deployclaw-gate -->}
allow_yellow=${DC_ALLOW_YELLOW:-false}
outputs=${GITHUB_OUTPUT:-/dev/null}
if [ -n "${DC_BASE_REF:-}" ]; then
  base=$DC_BASE_REF
elif [ -n "${GITHUB_BASE_REF:-}" ]; then
  base="origin/$GITHUB_BASE_REF"
else
  base="HEAD~1"
fi

case "$mode" in
  git-diff|changed-since) ;;
  *) echo "deployclaw action: changed-mode must be git-diff or changed-since, not '$mode'" >&2; exit 3 ;;
esac
if ! git rev-parse --verify --quiet "$base^{commit}" >/dev/null; then
  echo "deployclaw action: base ref '$base' is not a commit here (fetch it: actions/checkout with fetch-depth: 0)" >&2
  exit 3
fi

mkdir -p "$out_dir/sarif"
# Severity order of gates and risks, worst last.
rank_gate() { case "$1" in GREEN) echo 0 ;; YELLOW) echo 1 ;; RED) echo 2 ;; *) echo 3 ;; esac; }
rank_risk() { case "$1" in LOW) echo 0 ;; MEDIUM) echo 1 ;; HIGH) echo 2 ;; CRITICAL) echo 3 ;; *) echo -1 ;; esac; }
gate_of_code() { case "$1" in 0) echo GREEN ;; 1) echo YELLOW ;; 2) echo RED ;; *) echo ERROR ;; esac; }

# The changed migration files: added, copied, modified or renamed .sql files under $dir.
changed=()
while IFS= read -r f; do
  [ -n "$f" ] && [ -f "$f" ] && changed+=("$f")
done < <(git diff --name-only --diff-filter=ACMR "$base"...HEAD -- "$dir" | grep -E '\.sql$' | sort)

body="$out_dir/comment.md"
{
  echo "$marker"
} > "$body"

if [ "${#changed[@]}" -eq 0 ]; then
  echo "deployclaw: no migration changed under $dir since $base"
  {
    echo "## deployclaw: no migration changed"
    echo
    echo "No \`.sql\` file under \`$dir\` changed since \`$base\`."
  } >> "$body"
  {
    echo "gate=GREEN"; echo "risk="; echo "report="; echo "exit-code=0"
    echo "changed=0"; echo "sarif=$out_dir/sarif"; echo "comment=$body"
  } >> "$outputs"
  exit 0
fi

# Lint. The text goes to the log and the comment, SARIF to code scanning, `github` annotations
# to the log (GitHub turns them into annotations on the diff).
if [ "$mode" = changed-since ]; then
  lint_paths=(--changed-since "$base" "$dir")
else
  lint_paths=("${changed[@]}")
fi
"$bin" lint "${lint_paths[@]}" --format sarif > "$out_dir/sarif/lint.sarif"
[ -s "$out_dir/sarif/lint.sarif" ] || rm -f "$out_dir/sarif/lint.sarif"
"$bin" lint "${lint_paths[@]}" --format github || true
lint_text=$("$bin" lint "${lint_paths[@]}" --format text --color never 2>&1)
lint_rc=$?
echo "$lint_text"
worst_code=$lint_rc
gate=$(gate_of_code "$lint_rc")
risk=""
report=""
report_rank=-1

# validate-migration on each changed migration (rollback scripts are left to the proof).
validations=()
if [ -n "${DC_TARGET_DB:-}${DC_TOPOLOGY:-}" ]; then
  i=0
  for f in "${changed[@]}"; do
    case "$(basename "$f")" in
      down.sql|*.down.sql|U[0-9]*__*.sql) continue ;;
    esac
    i=$((i + 1))
    rdir="$out_dir/validate/$i-$(basename "$f" .sql)"
    args=(validate-migration --sql-file "$f" --report-dir "$rdir")
    [ -n "${DC_TARGET_DB:-}" ] && args+=(--target-db "$DC_TARGET_DB")
    [ -n "${DC_TOPOLOGY:-}" ] && args+=(--topology "$DC_TOPOLOGY")
    [ -n "${DC_TENANT_SCHEMAS:-}" ] && args+=(--tenant-schemas "$DC_TENANT_SCHEMAS")
    [ "$allow_yellow" = true ] && args+=(--allow-yellow)
    [ -n "${DC_CACHE_DIR:-}" ] && args+=(--cache-dir "$DC_CACHE_DIR")
    # shellcheck disable=SC2206 # split on purpose: extra arguments
    [ -n "${DC_VALIDATE_ARGS:-}" ] && args+=($DC_VALIDATE_ARGS)
    # The target is not echoed: it may hold a password (deployclaw itself prints it masked).
    echo "deployclaw validate-migration --sql-file $f --report-dir $rdir"
    "$bin" "${args[@]}"
    rc=$?
    [ "$rc" -gt "$worst_code" ] && worst_code=$rc
    validations+=("$f|$rdir|$rc")
    if [ -f "$rdir/report.json" ]; then
      g=$(jq -r '.gate' "$rdir/report.json")
      r=$(jq -r '.safety_gates.risk_level' "$rdir/report.json")
      [ -f "$rdir/report.sarif" ] && cp "$rdir/report.sarif" "$out_dir/sarif/validate-$i.sarif"
    else
      g=$(gate_of_code "$rc"); r=""
    fi
    [ "$(rank_gate "$g")" -gt "$(rank_gate "$gate")" ] && gate=$g
    # The report output: the worst validation's report.json.
    if [ -f "$rdir/report.json" ] && { [ -z "$report" ] || [ "$(rank_gate "$g")" -gt "$report_rank" ]; }; then
      report="$rdir/report.json"
      report_rank=$(rank_gate "$g")
    fi
    [ "$(rank_risk "$r")" -gt "$(rank_risk "$risk")" ] && risk=$r
  done
fi

code=$worst_code
[ "$allow_yellow" = true ] && [ "$code" -eq 1 ] && code=0

# The sticky comment: marker, verdict, lint output, each validation's Markdown report.
{
  echo "## deployclaw: $gate"
  echo
  echo "Changed migrations (since \`$base\`):"
  for f in "${changed[@]}"; do echo "- \`$f\`"; done
  echo
  echo "### lint"
  echo
  echo '```text'
  echo "$lint_text"
  echo '```'
  for v in "${validations[@]}"; do
    IFS='|' read -r f rdir rc <<< "$v"
    echo
    echo "### validate-migration \`$f\` (exit $rc)"
    echo
    if [ -f "$rdir/report.md" ]; then cat "$rdir/report.md"; else echo "No report was written: see the job log."; fi
  done
} >> "$body"
# GitHub refuses comments over 65536 characters.
if [ "$(wc -c < "$body")" -gt 60000 ]; then
  head -c 60000 "$body" > "$body.cut" && mv "$body.cut" "$body"
  printf '\n\n… cut: the whole report is in the job artifacts.\n' >> "$body"
fi

{
  echo "gate=$gate"; echo "risk=$risk"; echo "report=$report"; echo "exit-code=$code"
  echo "changed=${#changed[@]}"; echo "sarif=$out_dir/sarif"; echo "comment=$body"
} >> "$outputs"
echo "deployclaw: gate $gate${risk:+, risk $risk}, exit code $code"
exit 0
