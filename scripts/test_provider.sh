#!/usr/bin/env bash
# Install the OpenID Connect provider that tests/test_oidc_sign_in.py signs in with (panva's oidc-provider, a
# Node.js package pinned in tests/oidc_provider/package-lock.json). Without Node.js it installs Debian's when
# run as root, else says how and leaves the test to skip (it fails instead where DAPT_REQUIRE_BROWSER=1).
set -euo pipefail
cd "$(dirname "$0")/../tests/oidc_provider"
if ! command -v node >/dev/null || ! command -v npm >/dev/null; then
  if [ "$(id -u)" != 0 ]; then
    echo "Node.js is missing and this is not root: run 'sudo apt-get install -y nodejs npm' for the sign-in test." >&2
    exit 0
  fi
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq nodejs npm >/dev/null
fi
# npm ci installs exactly the lock file; it repeats only when the lock file changed (as scripts/setup.sh does)
stamp=node_modules/.dapt-installed
wanted="$(sha256sum package-lock.json | cut -d' ' -f1)"
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$wanted" ]; then
  npm ci --no-audit --no-fund --loglevel=error
  echo "$wanted" > "$stamp"
fi
