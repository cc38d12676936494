#!/usr/bin/env bash
# Last step of the deployclaw GitHub Action (action.yml): fails the job with the gate's exit
# code (0 green, 1 yellow unless allow-yellow, 2 red, 3 input error, 4 fleet unreachable), after
# the SARIF upload and the comment have run. Environment: DC_EXIT_CODE, DC_GATE.
set -euo pipefail
code=${DC_EXIT_CODE:-3}
case "$code" in
  0) echo "deployclaw: gate ${DC_GATE:-GREEN}" ;;
  *) echo "::error title=deployclaw::gate ${DC_GATE:-unknown}, exit code $code" ;;
esac
exit "$code"
