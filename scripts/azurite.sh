#!/usr/bin/env bash
# Installs (from the committed lock file) and starts/stops two Azurite instances, one per region:
#   source region (cache journal, page-blob sources): blob 10000, table 10002
#   target region (target disks, snapshots, tables):   blob 10010, table 10012
# Data lives under .local/azurite-<region>. Every command is idempotent.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
dir=tools/azurite
bin=$dir/node_modules/.bin/azurite
state=.local

# install runs npm ci from the lock file with a bound on its time (STANDBY_NPM_TIMEOUT seconds, default
# 600): npm's own retries against a registry that does not answer would otherwise hang for many minutes
# without a word. It says every 15 s that it is still running, and on a failure or a timeout it names the
# registry (without any credentials in its address) and prints the end of npm's log.
install() {
  [[ -x $bin ]] && return 0
  # failed <message>: the message and the end of npm's log, on stderr; the install fails.
  failed() {
    echo "azurite: $1 Last lines of $log:" >&2
    tail -n 10 "$log" | sed 's/^/azurite:   /' >&2
    exit 1
  }
  local limit=${STANDBY_NPM_TIMEOUT:-600} log registry pid waited=0 status=0
  # npm will not print a registry address that carries credentials; the environment's is then used.
  registry=$(cd $dir && npm config get registry 2>/dev/null) || registry=${npm_config_registry:-${NPM_CONFIG_REGISTRY:-unknown}}
  registry=$(sed -E 's|//[^/@]*@|//|' <<<"$registry")
  mkdir -p "$state"
  log=$root/$state/azurite-npm.log
  echo "azurite: installing the pinned version from $dir/package-lock.json (npm ci from $registry, up to ${limit} s; log: $log)"
  # Its own session (setsid), so that the bound ends npm and every process it started.
  (cd $dir && exec setsid npm ci --no-audit --no-fund --loglevel=http --fetch-timeout=30000 --fetch-retries=1 \
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
      echo "azurite: npm ci still running (${waited} s, $(grep -c 'http fetch' "$log" || true) fetches so far)"
    fi
  done
  wait "$pid" || status=$?
  if ((status != 0)) || [[ ! -x $bin ]]; then
    failed "npm ci failed (exit $status) installing from $registry."
  fi
  echo "azurite: installed $(cd $dir && node -p 'require("azurite/package.json").version') in ${waited} s"
}

port_open() { (exec 3<>/dev/tcp/127.0.0.1/"$1") 2>/dev/null; }

start_one() {
  local region=$1 blob=$2 queue=$3 table=$4
  if port_open "$blob" && port_open "$table"; then
    echo "azurite: $region already running (blob $blob, table $table)"
    return
  fi
  mkdir -p "$state/azurite-$region"
  nohup "$bin" --silent --disableTelemetry --skipApiVersionCheck --loose \
    --location "$state/azurite-$region" --blobHost 127.0.0.1 --blobPort "$blob" --queueHost 127.0.0.1 --queuePort "$queue" \
    --tableHost 127.0.0.1 --tablePort "$table" >"$state/azurite-$region.log" 2>&1 &
  echo $! >"$state/azurite-$region.pid"
  for _ in $(seq 1 100); do
    if port_open "$blob" && port_open "$table"; then
      echo "azurite: $region started (blob $blob, table $table, pid $(cat "$state/azurite-$region.pid"))"
      return
    fi
    sleep 0.1
  done
  echo "azurite: $region did not start; see $state/azurite-$region.log" >&2
  cat "$state/azurite-$region.log" >&2
  exit 1
}

# ours reports whether pid is the Azurite this checkout started for region (a pid file can outlive its
# process, and the pid can since have gone to another program).
ours() {
  local pid=$1 region=$2
  kill -0 "$pid" 2>/dev/null && [[ $(ps -o args= -p "$pid" 2>/dev/null) == *"--location $state/azurite-$region "* ]]
}

# stop_one stops only the process its pid file names: another checkout's Azurite (same ports, same
# relative --location) is never touched. Ports still held afterwards are reported, not freed.
stop_one() {
  local region=$1 blob=$2 table=$3 pidfile=$state/azurite-$1.pid pid=""
  [[ -f $pidfile ]] && pid=$(cat "$pidfile")
  if [[ -n $pid ]] && ours "$pid" "$region"; then
    kill "$pid" 2>/dev/null || true
    for _ in $(seq 1 50); do ours "$pid" "$region" || break; sleep 0.1; done
    if ours "$pid" "$region"; then
      kill -KILL "$pid" 2>/dev/null || true
      for _ in $(seq 1 20); do ours "$pid" "$region" || break; sleep 0.1; done
    fi
    echo "azurite: $region stopped (pid $pid)"
  else
    echo "azurite: $region not running from this checkout"
  fi
  rm -f "$pidfile"
  if port_open "$blob" || port_open "$table"; then
    echo "azurite: $region: port $blob or $table is still held by a process this script did not start; left running" >&2
  fi
}

case "${1:-}" in
  install) install ;;
  start)
    install
    start_one source 10000 10001 10002
    start_one target 10010 10011 10012
    ;;
  stop) stop_one source 10000 10002; stop_one target 10010 10012 ;;
  reset) stop_one source 10000 10002; stop_one target 10010 10012; rm -rf "$state"/azurite-* ;;
  *) echo "usage: $0 install|start|stop|reset" >&2; exit 2 ;;
esac
