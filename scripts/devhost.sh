#!/usr/bin/env bash
# Starts/stops devhost (the local Functions host) in the background with the local settings.
set -euo pipefail
cd "$(dirname "$0")/.."
state=.local
mkdir -p $state
port_open() { (exec 3<>/dev/tcp/127.0.0.1/7071) 2>/dev/null; }
# ours reports whether the pid file names a running devhost this script started (the pid may since
# have gone to another program, which is never signalled).
ours() {
  [[ -f $state/devhost.pid ]] && kill -0 "$(cat $state/devhost.pid)" 2>/dev/null &&
    [[ $(ps -o args= -p "$(cat $state/devhost.pid)" 2>/dev/null) == *"bin/devhost run"* ]]
}
case "${1:-}" in
  start)
    [[ -f local.settings.json ]] || cp infra/local/local.settings.json local.settings.json
    if ours; then
      echo "devhost: already running (pid $(cat $state/devhost.pid))"; exit 0
    fi
    if port_open; then
      echo "devhost: port 7071 is held by a process this script did not start; stop that one first" >&2; exit 1
    fi
    [[ -f dist/app/host.json ]] || scripts/package.sh dist >/dev/null
    # The staged app (what ships), with the repository's local settings, broker entities and state.
    nohup bin/devhost run -app dist/app -settings local.settings.json -broker-config "$PWD/infra/local/broker.json" \
      -state "$PWD/$state/devhost" >"$state/devhost.out" 2>"$state/devhost.log" &
    echo $! >$state/devhost.pid
    for _ in $(seq 1 100); do
      if port_open; then echo "devhost: started (pid $(cat $state/devhost.pid)), http://127.0.0.1:7071"; exit 0; fi
      if ! kill -0 "$(cat $state/devhost.pid)" 2>/dev/null; then echo "devhost: exited:" >&2; cat $state/devhost.log >&2; exit 1; fi
      sleep 0.1
    done
    echo "devhost: did not open port 7071" >&2; exit 1
    ;;
  stop)
    # Only the pid in the pid file: another checkout's devhost is never touched.
    if ours; then
      kill "$(cat $state/devhost.pid)" 2>/dev/null || true
      for _ in $(seq 1 100); do ours || break; sleep 0.1; done
      echo "devhost: stopped"
    fi
    rm -f $state/devhost.pid
    if port_open; then echo "devhost: port 7071 is still held by a process this script did not start; left running" >&2; fi
    ;;
  *) echo "usage: $0 start|stop" >&2; exit 2 ;;
esac
