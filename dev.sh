#!/bin/sh
# One entry point for people and CI:
#   ./dev.sh serve [serve options]   set up .venv and run the service (SQLite, auth off, loopback)
#   ./dev.sh test  [pytest options]  set up .venv with test extras and run the whole test suite
#   ./dev.sh setup                   set up .venv only
set -eu
cd "$(dirname "$0")"
VENV=${VENV:-.venv}
PY=${PYTHON:-python3}

die() { printf 'baclofen-cds setup: %s\n' "$*" >&2; exit 1; }

check_python() {
  command -v "$PY" >/dev/null 2>&1 || die "no '$PY' found; install Python 3.11 or newer."
  "$PY" -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else 1)' \
    || die "Python 3.11+ is required; '$PY' is $("$PY" -V 2>&1)."
  "$PY" -c 'import venv, ensurepip' 2>/dev/null \
    || die "Python's venv module is missing. On Debian: apt-get install python3-venv"
}

# durable_rules 2.0.28 ships only as source and compiles a C extension when pip installs it.
check_compiler() {
  echo "baclofen-cds setup: durable_rules compiles a C extension at install; checking for a C compiler and Python headers"
  cc_found=""
  for c in ${CC:-} cc gcc clang; do
    if command -v "$c" >/dev/null 2>&1; then cc_found=$c; break; fi
  done
  [ -n "$cc_found" ] || die "no C compiler found (needed to build durable_rules). On Debian: apt-get install gcc"
  inc=$("$PY" -c 'import sysconfig; print(sysconfig.get_paths()["include"])')
  [ -f "$inc/Python.h" ] || die "Python headers not found ($inc/Python.h is missing; needed to build durable_rules). On Debian: apt-get install python3-dev"
}

setup() {
  extras=$1
  stamp="$VENV/.installed-$extras"
  if [ -f "$stamp" ] && [ "$stamp" -nt pyproject.toml ]; then return 0; fi
  check_python
  if [ ! -x "$VENV/bin/python" ] || ! "$VENV/bin/python" -c 'import durable' 2>/dev/null; then
    check_compiler
  fi
  [ -x "$VENV/bin/python" ] || "$PY" -m venv "$VENV"
  "$VENV/bin/python" -m pip install --quiet --upgrade pip >/dev/null 2>&1 || true
  spec="."
  [ "$extras" = base ] || spec=".[$extras]"
  "$VENV/bin/python" -m pip install --quiet -e "$spec" \
    || die "pip could not install the project (see the messages above)."
  touch "$stamp"
}

cmd=${1:-help}
[ $# -gt 0 ] && shift
case "$cmd" in
  setup) setup test ;;
  serve)
    setup base
    echo "baclofen-cds: local trial (SQLite, client authentication off); gunicorn prints the address it listens at"
    CDS_AUTH=${CDS_AUTH:-off} exec "$VENV/bin/baclofen-cds" serve "$@" ;;
  test)
    setup "test,postgres"
    exec "$VENV/bin/python" -m pytest "$@" ;;
  *) echo "usage: ./dev.sh serve|test|setup [args]" >&2; exit 2 ;;
esac
