#!/usr/bin/env bash
# Install Debian's Chromium for the end-to-end browser test (needs root; Playwright's own
# browser download does not work offline, so the test drives /usr/bin/chromium).
set -euo pipefail
if [ -x /usr/bin/chromium ]; then exit 0; fi
if [ "$(id -u)" != 0 ]; then
  echo "Chromium is missing and this is not root: run 'sudo apt-get install -y chromium' for the browser test." >&2
  exit 0
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq chromium >/dev/null
