#!/usr/bin/env bash
# Starts/stops devhost (the local Functions host) in the background with the local settings.
set -euo pipefail
cd "$(dirname "$0")/.."
state=.local
mkdir -p $state
case "${1:-}" in
  start)
    [[ -f local.settings.json ]] || cp infra/local/local.settings.json local.settings.json
    if [[ -f $state/devhost.pid ]] && kill -0 "$(cat $state/devhost.pid)" 2>/dev/null; then
      echo "devhost: already running (pid $(cat $state/devhost.pid))"; exit 0
    fi
    nohup bin/devhost run >"$state/devhost.out" 2>"$state/devhost.log" &
    echo $! >$state/devhost.pid
    for _ in $(seq 1 100); do
      if (exec 3<>/dev/tcp/127.0.0.1/7071) 2>/dev/null; then echo "devhost: started (pid $(cat $state/devhost.pid)), http://127.0.0.1:7071"; exit 0; fi
      if ! kill -0 "$(cat $state/devhost.pid)" 2>/dev/null; then echo "devhost: exited:" >&2; cat $state/devhost.log >&2; exit 1; fi
      sleep 0.1
    done
    echo "devhost: did not open port 7071" >&2; exit 1
    ;;
  stop)
    if [[ -f $state/devhost.pid ]]; then
      kill "$(cat $state/devhost.pid)" 2>/dev/null || true
      for _ in $(seq 1 100); do kill -0 "$(cat $state/devhost.pid)" 2>/dev/null || break; sleep 0.1; done
      rm -f $state/devhost.pid
      echo "devhost: stopped"
    fi
    ;;
  *) echo "usage: $0 start|stop" >&2; exit 2 ;;
esac
