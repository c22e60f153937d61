#!/usr/bin/env bash
# Installs (from the committed lock file) and starts/stops two Azurite instances, one per region:
#   source region (cache journal, page-blob sources): blob 10000, table 10002
#   target region (target disks, snapshots, tables):   blob 10010, table 10012
# Data lives under .local/azurite-<region>. Every command is idempotent.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/npm-ci.sh
dir=tools/azurite
bin=$dir/node_modules/.bin/azurite
state=.local

# install installs the pinned Azurite (scripts/npm-ci.sh: bounded in time, saying what it waits for).
install() { npm_ci "$dir" azurite azurite; }

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
