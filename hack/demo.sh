#!/usr/bin/env bash
# demo.sh shows Warden at work on this machine. The walkthrough is not written yet;
# until then it says so and succeeds.
set -euo pipefail
cd "$(dirname "$0")/.."
echo "demo not yet available: see README.md for what Warden does today"
