#!/usr/bin/env bash
# The README's first command: installs what is missing, builds, and runs Magline on its embedded
# default configuration. Until the dataplane lands this shows what Magline would program: every
# service, its Maglev table and the share of slots each backend holds.
set -euo pipefail
cd "$(dirname "$0")/.."

bash tools/install-deps.sh
[ -f build/build.ninja ] || meson setup build >/dev/null
ninja -C build control/magline >/dev/null

echo "== magline check (embedded default configuration)"
build/control/magline check
echo
echo "== magline table"
build/control/magline table
