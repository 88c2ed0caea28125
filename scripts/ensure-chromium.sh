#!/usr/bin/env bash
# The browser the dashboard's browser test drives: Debian's chromium (/usr/bin/chromium), which
# Playwright for Python uses as its executable (it cannot download its own here). Installed when
# missing, on Debian as root; elsewhere it says what to install. CHROMIUM overrides the path.
set -euo pipefail

browser="${CHROMIUM:-/usr/bin/chromium}"
[ -x "$browser" ] && exit 0
if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null; then
  echo "ensure-chromium: $browser missing; install it (Debian: apt-get install chromium) or set" \
       "CHROMIUM to a Chromium binary" >&2
  exit 1
fi
echo "ensure-chromium: installing chromium"
[ -n "${ACOUSTACK_APT_UPDATED:-}" ] || apt-get update -qq
DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends chromium fonts-dejavu-core >/dev/null
"$browser" --version
