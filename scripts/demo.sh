#!/usr/bin/env bash
# The foundation demo: brings the local stack up, sends descriptors through the change stream, a
# failover request through the API and the job queue, shows the invocations and the resulting rows,
# and tears everything down.
set -euo pipefail
cd "$(dirname "$0")/.."
key=local-dev-key
api() { curl -sS -H "x-functions-key: $key" "$@"; echo; }
cleanup() { scripts/devhost.sh stop || true; scripts/azurite.sh stop || true; }
trap cleanup EXIT

rm -rf .local/broker.db* .local/devhost
scripts/azurite.sh start
scripts/devhost.sh start
sleep 1
echo; echo "== 1. Health of every dependency (GET /api/v1/health)"
api http://127.0.0.1:7071/api/v1/health

echo; echo "== 2. Five descriptors for group demo-group (one duplicate, one malformed) through the change stream"
now=$(date -u +%Y-%m-%dT%H:%M:%SZ)
for seq in 1 2 3; do
  bin/devhost publish -key demo-group -body "{\"group\":\"demo-group\",\"seq\":$seq,\"kind\":\"batch\",\"sourceTime\":\"$now\",\"journal\":\"demo-group/$seq\",\"bytes\":4096,\"crc64\":\"0123456789abcdef\"}"
done
bin/devhost publish -key demo-group -body "{\"group\":\"demo-group\",\"seq\":3,\"kind\":\"batch\",\"sourceTime\":\"$now\",\"journal\":\"demo-group/3\",\"bytes\":4096,\"crc64\":\"0123456789abcdef\"}"
bin/devhost publish -key demo-group -body '{"group":"demo-group","seq":"four"}'
sleep 2

echo; echo "== 3. A test failover request (POST /api/v1/groups/demo-group/failover) goes through the job queue"
location=$(curl -sS -D - -o /dev/null -X POST -H "x-functions-key: $key" http://127.0.0.1:7071/api/v1/groups/demo-group/failover \
  -d '{"type":"test","recoveryPoint":"latestProcessed"}' | tr -d '\r' | awk 'tolower($1)=="location:"{print $2}')
echo "Location: $location"
sleep 2
api "http://127.0.0.1:7071$location"

echo; echo "== 4. Bad input is refused with the reason"
api -X POST http://127.0.0.1:7071/api/v1/groups/demo-group/failover -d '{"type":"sideways"}'
curl -sS -o /dev/null -w "without the function key: HTTP %{http_code}\n" http://127.0.0.1:7071/api/v1/health

echo; echo "== 5. Group state in Table storage (GET /api/v1/groups/demo-group): watermark 3, three descriptors"
api http://127.0.0.1:7071/api/v1/groups/demo-group

echo; echo "== 6. Waiting for a cutpoints timer tick (every 10 s)"
for _ in $(seq 1 24); do grep -q "Executed 'cutpoints'" .local/devhost.out && break; sleep 0.5; done

echo; echo "== 7. What devhost did (its invocation log)"
cat .local/devhost.out
