#!/usr/bin/env bash
# Installs what the tests and the review console (src-tauri/, ui/,
# tests/console/) need on Debian/Ubuntu. Idempotent: skips what is already present and says so.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi

say() { printf '[setup] %s\n' "$*"; }

APT_PACKAGES=(
  # build the Tauri app
  libwebkit2gtk-4.1-dev build-essential curl wget file libxdo-dev libssl-dev
  libayatana-appindicator3-dev librsvg2-dev
  # the OS keyring (Secret Service over D-Bus) for the token
  libdbus-1-dev pkg-config
  # run it without a screen, drive it, take screenshots
  xvfb webkit2gtk-driver imagemagick x11-apps xauth xdotool
  # the end-to-end suites: real SQLite files, git repositories, the MCP venv
  sqlite3 git python3-venv
)

missing=()
for p in "${APT_PACKAGES[@]}"; do
  if dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    :
  else
    missing+=("$p")
  fi
done

if [ "${#missing[@]}" -eq 0 ]; then
  say "apt: all ${#APT_PACKAGES[@]} packages already installed"
else
  say "apt: installing ${missing[*]}"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/tmp/recourse-setup-apt.log 2>&1 \
    || { tail -20 /tmp/recourse-setup-apt.log; exit 1; }
  say "apt: done (log in /tmp/recourse-setup-apt.log)"
fi

# The test command runs the Rust suites with cargo-nextest.
if cargo nextest --version >/dev/null 2>&1; then
  say "cargo-nextest: present ($(cargo nextest --version | head -1))"
else
  say "cargo-nextest: cargo install cargo-nextest --locked"
  cargo install cargo-nextest --locked
fi

# The fuzz step of the test command (scripts/fuzz.sh) builds with cargo-fuzz.
if cargo fuzz --version >/dev/null 2>&1; then
  say "cargo-fuzz: present ($(cargo fuzz --version | head -1))"
else
  say "cargo-fuzz: cargo install cargo-fuzz --locked"
  cargo install cargo-fuzz --locked
fi

if command -v tauri-driver >/dev/null 2>&1; then
  say "tauri-driver: present ($(command -v tauri-driver))"
else
  say "tauri-driver: cargo install tauri-driver --locked"
  cargo install tauri-driver --locked
fi

if ! command -v npm >/dev/null 2>&1; then
  say "npm: missing; installing nodejs and npm from apt"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends nodejs npm
fi

# The UI, and the WebdriverIO harness of tests/console/.
for dir in ui tests/console; do
  if [ -f "$ROOT/$dir/package-lock.json" ]; then
    if [ -d "$ROOT/$dir/node_modules" ] && [ "$ROOT/$dir/node_modules/.package-lock.json" -nt "$ROOT/$dir/package-lock.json" ]; then
      say "npm: $dir/node_modules is up to date with $dir/package-lock.json"
    else
      say "npm: npm ci in $dir/"
      (cd "$ROOT/$dir" && npm ci --no-audit --no-fund)
    fi
  else
    say "npm: $dir/package-lock.json not found; skipping npm ci there"
  fi
done

say "done"
