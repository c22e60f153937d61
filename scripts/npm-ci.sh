#!/usr/bin/env bash
# npm_ci DIR BIN NAME: installs DIR's pinned packages from its committed lock file (npm ci) unless
# DIR/node_modules/.bin/BIN exists, naming the install NAME in what it prints. Sourced by the scripts
# that need a tool from npm (azurite.sh; the OpenAPI client check's tools, `scripts/npm-ci.sh DIR BIN
# NAME` when run itself).
#
# The install is bounded in time (STANDBY_NPM_TIMEOUT seconds, default 600): npm's own retries against a
# registry that does not answer would otherwise hang for many minutes without a word. It says every 15 s
# that it is still running, and on a failure or a timeout it names the registry (without any
# credentials in its address) and prints the end of npm's log.
npm_ci() {
  local dir=$1 bin=$2 name=$3
  [[ -x $dir/node_modules/.bin/$bin ]] && return 0
  local limit=${STANDBY_NPM_TIMEOUT:-600} log registry pid waited=0 status=0 state=.local
  # failed <message>: the message and the end of npm's log, on stderr; the install fails.
  failed() {
    echo "$name: $1 Last lines of $log:" >&2
    tail -n 10 "$log" | sed "s/^/$name:   /" >&2
    exit 1
  }
  # npm will not print a registry address that carries credentials; the environment's is then used.
  registry=$(cd "$dir" && npm config get registry 2>/dev/null) || registry=${npm_config_registry:-${NPM_CONFIG_REGISTRY:-unknown}}
  registry=$(sed -E 's|//[^/@]*@|//|' <<<"$registry")
  mkdir -p "$state"
  log=$(pwd)/$state/$name-npm.log
  echo "$name: installing the pinned version from $dir/package-lock.json (npm ci from $registry, up to ${limit} s; log: $log)"
  # Its own session (setsid), so that the bound ends npm and every process it started.
  (cd "$dir" && exec setsid npm ci --no-audit --no-fund --loglevel=http --fetch-timeout=30000 --fetch-retries=1 \
    --fetch-retry-mintimeout=2000 --fetch-retry-maxtimeout=10000) >"$log" 2>&1 &
  pid=$!
  while kill -0 "$pid" 2>/dev/null; do
    if ((waited >= limit)); then
      # npm ignores SIGTERM while its fetches hang: TERM, a grace of 5 s, then KILL.
      kill -TERM -- -"$pid" 2>/dev/null || true
      for _ in 1 2 3 4 5; do kill -0 "$pid" 2>/dev/null || break; sleep 1; done
      kill -KILL -- -"$pid" 2>/dev/null || true
      wait "$pid" 2>/dev/null || true
      failed "npm ci did not finish within ${limit} s: is the npm registry $registry reachable? (STANDBY_NPM_TIMEOUT sets the bound)"
    fi
    sleep 1
    waited=$((waited + 1))
    if ((waited % 15 == 0)); then
      echo "$name: npm ci still running (${waited} s, $(grep -c 'http fetch' "$log" || true) fetches so far)"
    fi
  done
  wait "$pid" || status=$?
  if ((status != 0)) || [[ ! -x $dir/node_modules/.bin/$bin ]]; then
    failed "npm ci failed (exit $status) installing from $registry."
  fi
  echo "$name: installed in ${waited} s"
}

if [[ ${BASH_SOURCE[0]} == "$0" ]]; then
  set -euo pipefail
  cd "$(dirname "$0")/.."
  npm_ci "$@"
fi
