#!/usr/bin/env bash
# The sticky pull-request comment of the deployclaw GitHub Action (action.yml).
#
# Posts the body file as one comment on the pull request, found again on later runs by a hidden
# marker and updated in place (never a second comment). Needs curl and jq.
#
# Environment:
#   GITHUB_API_URL     API base URL [https://api.github.com] (tests point it at a local server)
#   GITHUB_REPOSITORY  owner/name
#   GITHUB_TOKEN       token with pull-requests: write (never printed)
#   DC_PR_NUMBER       pull request number; empty: nothing is posted (not a pull request)
#   DC_BODY_FILE       the comment body (written by scripts/action/gate.sh)
#   DC_MARKER          hidden marker [<!-- deployclaw-gate -->]
set -euo pipefail

api=${GITHUB_API_URL:-https://api.github.com}
marker=${DC_MARKER:-<!-- deployclaw-gate -->}
pr=${DC_PR_NUMBER:-}
if [ -z "$pr" ]; then
  echo "deployclaw action: not a pull request, no comment posted"
  exit 0
fi
: "${GITHUB_REPOSITORY:?GITHUB_REPOSITORY is not set}"
: "${GITHUB_TOKEN:?GITHUB_TOKEN is not set}"
: "${DC_BODY_FILE:?DC_BODY_FILE is not set}"

call() { # METHOD URL [DATA-FILE]
  local args=(-fsS -X "$1" -H "Authorization: Bearer $GITHUB_TOKEN"
    -H "Accept: application/vnd.github+json" -H "X-GitHub-Api-Version: 2022-11-28")
  [ $# -ge 3 ] && args+=(-H "Content-Type: application/json" --data-binary "@$3")
  curl "${args[@]}" "$2"
}

# The marked comment, if any: every page of the pull request's comments (bounded).
id=""
for page in $(seq 1 50); do
  comments=$(call GET "$api/repos/$GITHUB_REPOSITORY/issues/$pr/comments?per_page=100&page=$page")
  id=$(jq -r --arg m "$marker" '[.[] | select((.body // "") | contains($m))][0].id // empty' <<< "$comments")
  [ -n "$id" ] && break
  [ "$(jq 'length' <<< "$comments")" -lt 100 ] && break
done

payload=$(mktemp)
trap 'rm -f "$payload"' EXIT
jq -Rs '{body: .}' < "$DC_BODY_FILE" > "$payload"
if [ -n "$id" ]; then
  call PATCH "$api/repos/$GITHUB_REPOSITORY/issues/comments/$id" "$payload" > /dev/null
  echo "deployclaw action: updated comment $id on #$pr"
else
  call POST "$api/repos/$GITHUB_REPOSITORY/issues/$pr/comments" "$payload" > /dev/null
  echo "deployclaw action: posted a comment on #$pr"
fi
