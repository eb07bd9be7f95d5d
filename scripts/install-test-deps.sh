#!/usr/bin/env bash
# Installs what the tests need beyond cargo: the independent HTTP Signature implementations in
# tests/peer that tests/httpsig_interop.rs runs as subprocesses.
#   - Node (>= 20): @peertube/http-signature and @fedify/fedify, and masto (the Mastodon client
#     library tests/client_api.rs drives the client API with), from package-lock.json (npm ci)
#   - Python 3: http-message-signatures (RFC 9421) and toot (a Mastodon client app) in
#     tests/peer/.venv, from requirements.txt
# Idempotent: each part is reinstalled only when its lock file changed, so a second run takes
# well under a second. Needs the npm and PyPI registries the first time, nothing else.
set -euo pipefail
cd "$(dirname "$0")/../tests/peer"

hash_of() { sha256sum "$1" | cut -d' ' -f1; }

command -v node >/dev/null || { echo "install-test-deps: node (>= 20) is not on PATH" >&2; exit 1; }
command -v python3 >/dev/null || { echo "install-test-deps: python3 is not on PATH" >&2; exit 1; }

stamp=node_modules/.hortus-lock.sha256
want=$(hash_of package-lock.json)
if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
  echo "install-test-deps: npm ci in tests/peer"
  npm ci --no-audit --no-fund --loglevel=error
  echo "$want" >"$stamp"
fi

stamp=.venv/.hortus-requirements.sha256
want=$(hash_of requirements.txt)
if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
  echo "install-test-deps: Python venv in tests/peer/.venv"
  rm -rf .venv
  python3 -m venv .venv
  .venv/bin/pip install --quiet --disable-pip-version-check -r requirements.txt
  echo "$want" >"$stamp"
fi

# --- systemd-analyze for tests/ops.rs ------------------------------------------------------------
# `systemd-analyze verify` checks the unit `hortus service` prints. Debian's systemd package
# installs without starting anything when systemd is not PID 1 (a container, a CI runner).
if ! command -v systemd-analyze >/dev/null; then
  if [ "$(id -u)" -ne 0 ]; then
    echo "install-test-deps: systemd-analyze missing; run this script as root to apt-get install systemd" >&2
    exit 1
  fi
  echo "install-test-deps: apt-get install systemd"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends systemd >/dev/null
fi

# --- Web servers for tests/export.rs -------------------------------------------------------------
# nginx and Caddy from Debian serve a `hortus export` on loopback with the generated
# configuration. Installed only when missing (needs root and the Debian mirror the first time);
# the system services the packages start are stopped: the tests run their own instances.
missing=()
command -v nginx >/dev/null || [ -x /usr/sbin/nginx ] || missing+=(nginx)
command -v caddy >/dev/null || missing+=(caddy)
if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" -ne 0 ]; then
    echo "install-test-deps: ${missing[*]} missing; run this script as root to apt-get install them" >&2
    exit 1
  fi
  echo "install-test-deps: apt-get install ${missing[*]}"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  if command -v systemctl >/dev/null && [ -d /run/systemd/system ]; then
    systemctl disable --now "${missing[@]}" >/dev/null 2>&1 || true
  fi
fi

# --- A browser for tests/conversation.rs ---------------------------------------------------------
# Debian's Chromium runs the page with the Big List of Naughty Strings' XSS vectors headless and
# checks that none of them runs. Installed only when missing (needs root the first time).
if ! command -v chromium >/dev/null && ! command -v chromium-browser >/dev/null; then
  if [ "$(id -u)" -ne 0 ]; then
    echo "install-test-deps: chromium missing; run this script as root to apt-get install it" >&2
    exit 1
  fi
  echo "install-test-deps: apt-get install chromium"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends chromium >/dev/null
fi

# --- A second live peer for tests/snac_interop.rs ------------------------------------------------
# snac2 (an ActivityPub server in C) is packaged in bookworm-backports only. The suite is added to
# apt's sources with the mirror URI the main suite already uses (a file of our own, written only
# when no source lists the suite), then snac2 is installed from it. Needs root the first time.
if ! command -v snac >/dev/null; then
  if [ "$(id -u)" -ne 0 ]; then
    echo "install-test-deps: snac2 missing; run this script as root to apt-get install it" >&2
    exit 1
  fi
  codename=$(. /etc/os-release && echo "${VERSION_CODENAME:-}")
  [ -n "$codename" ] || { echo "install-test-deps: no VERSION_CODENAME in /etc/os-release" >&2; exit 1; }
  if ! grep -rqsE "^[^#]*(Suites:.*[[:space:]]|deb .*[[:space:]])${codename}-backports([[:space:]]|$)" \
      /etc/apt/sources.list /etc/apt/sources.list.d/; then
    # The URI of the main suite: deb822 (`URIs:` of the stanza whose Suites has the codename) or
    # one-line (`deb URI codename ...`).
    mirror=$(awk -v c="$codename" '
      /^URIs:/ { uri = $2 }
      /^Suites:/ { for (i = 2; i <= NF; i++) if ($i == c) found = uri }
      /^$/ { uri = "" }
      END { print found }' /etc/apt/sources.list.d/*.sources 2>/dev/null)
    if [ -z "$mirror" ]; then
      mirror=$(awk -v c="$codename" '$1 == "deb" && $3 == c { print $2; exit }' \
        /etc/apt/sources.list /etc/apt/sources.list.d/*.list 2>/dev/null)
    fi
    [ -n "$mirror" ] || { echo "install-test-deps: no apt source for $codename found to copy the mirror from" >&2; exit 1; }
    echo "install-test-deps: adding ${codename}-backports from $mirror"
    printf 'Types: deb\nURIs: %s\nSuites: %s-backports\nComponents: main\nSigned-By: /usr/share/keyrings/debian-archive-keyring.gpg\n' \
      "$mirror" "$codename" >/etc/apt/sources.list.d/hortus-test-backports.sources
  fi
  echo "install-test-deps: apt-get install -t ${codename}-backports snac2"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
    -t "${codename}-backports" snac2 >/dev/null
  if command -v systemctl >/dev/null && [ -d /run/systemd/system ]; then
    systemctl disable --now snac2 >/dev/null 2>&1 || true
  fi
fi
