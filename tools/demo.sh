#!/usr/bin/env bash
# The README's first command: installs what is missing, builds, and runs Magline on its embedded
# default configuration in a small network of namespaces (a client, a second client on another
# subnet, three backends with HTTP and UDP servers, a bridge), sends real traffic through every
# forwarding mode, shows how it spread over the backends, and removes everything. Needs root.
set -euo pipefail
cd "$(dirname "$0")/.."

if [ "$(id -u)" -ne 0 ]; then
  echo "demo: run as root (it creates network namespaces and opens an af_packet port)" >&2
  exit 2
fi
bash tools/install-deps.sh
[ -f build/build.ninja ] || meson setup build >/dev/null
ninja -C build control/magline >/dev/null

echo "== magline check: the embedded default configuration"
build/control/magline check
echo
echo "== magline run on it, with real clients and servers"
exec /usr/bin/python3 tests/e2e/e2e.py --demo --magline build/control/magline
