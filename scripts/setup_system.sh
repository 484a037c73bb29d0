#!/bin/sh
# What the project needs beyond Python packages, installed only when missing, so that it is
# quick to run before every `make test`:
#   Debian packages: chromium (browser tests), redis-server (shared token cache), wrk (load
#   benchmark), npm (the frontend's packages), python3-venv (for .venv, if Python lacks it);
#   node_modules: `npm ci`, when it is missing or older than package-lock.json.
# apt-get runs as root, or through sudo; `apt-get update` runs once, only if it installs.
set -eu
cd "$(dirname "$0")/.."

missing=""

# need PACKAGE COMMAND...: PACKAGE is missing unless one of the commands is on the PATH
# (a command installed another way counts).
need() {
    package=$1
    shift
    for command in "$@"; do
        if command -v "$command" >/dev/null 2>&1; then
            return 0
        fi
    done
    missing="$missing $package"
}

need chromium chromium chromium-browser
need redis-server redis-server
need wrk wrk
need npm npm
if [ ! -x .venv/bin/python ] && ! "${PYTHON:-python3}" -c "import ensurepip" 2>/dev/null; then
    missing="$missing python3-venv"
fi

if [ -n "$missing" ]; then
    if ! command -v apt-get >/dev/null 2>&1; then
        echo "setup_system: not a Debian system; install these yourself:$missing" >&2
        exit 1
    fi
    as_root=""
    if [ "$(id -u)" -ne 0 ]; then
        as_root=sudo
    fi
    echo "setup_system: installing$missing"
    $as_root apt-get update -qq
    # shellcheck disable=SC2086 # one word per package
    $as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $missing
fi

if [ ! -f node_modules/.package-lock.json ] \
    || [ package-lock.json -nt node_modules/.package-lock.json ]; then
    npm ci --no-audit --no-fund
fi
