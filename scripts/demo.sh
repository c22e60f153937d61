#!/usr/bin/env bash
# The demo: the local stack up (two Azurite regions, the embedded broker, devhost with the app's
# functions, the local compute), a consistency group of 2 VMs x 2 disks (64 MiB each; each VM's OS disk
# the bootable image of scripts/vm-image.sh) enabled through the API, the agent replicating it while its
# workload writes the data disks for DEMO_SECONDS (default 60); a test failover drill to the newest point
# — the test VMs boot in no network and say so on their consoles —, its disks checked against the ground
# truth at that point, cleaned up; a planned failover with zero data loss that boots the VMs, checked
# against the sources; proof that every target disk and every marker snapshot is byte-identical to the
# ground truth; the recovery points and health; a summary with throughput, RPO and RTO (request → every
# VM healthy); everything torn down, unless DEMO_KEEP=1 (then the console's URL is printed and the stack
# stays up until `make stop`).
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${DEMO_SECONDS:-60}
rate=${DEMO_MBPS:-8}
key=local-dev-key
group=demo
api() { curl -sS -H "x-functions-key: $key" "$@"; echo; }
# stop_vms ends the VMs the local compute started for this demo (their pids are in its state files).
stop_vms() {
  for f in .local/compute/*/vms/*/vm.json; do
    [[ -f $f ]] || continue
    pid=$(grep -oE '"pid": *[0-9]+' "$f" | grep -oE '[0-9]+$')
    [[ -n $pid ]] && grep -q qemu-system "/proc/$pid/cmdline" 2>/dev/null && kill "$pid" 2>/dev/null || true
  done
}
# The key stays out of the URL (browser history, proxies' logs): the page asks for it.
console_url="http://127.0.0.1:7071/api/console/"
cleanup() { stop_vms; scripts/devhost.sh stop || true; scripts/azurite.sh stop || true; }
if [[ ${1:-} == stop ]]; then cleanup; exit 0; fi # make stop: what a kept demo left running
# DEMO_KEEP=1 leaves the stack (and the failed-over VMs) up for a person to open the console.
finish() {
  if [[ ${DEMO_KEEP:-} == 1 ]]; then
    echo; echo "== DEMO_KEEP=1: the stack stays up. The console: $console_url"
    echo "   Sign in with the local dev key (DevhostFunctionKey in local.settings.json); make stop ends it all."
  else
    cleanup
  fi
}
trap finish EXIT

scripts/devhost.sh stop >/dev/null
scripts/azurite.sh reset >/dev/null # a demo starts from empty storage
stop_vms
rm -rf .local/broker.db* .local/devhost .local/agent .local/truth.jsonl .local/compute .local/demo
# The VMs' OS disks are the bootable image; failed-over VMs come up on the local compute (QEMU).
mkdir -p .local/demo && cp .local/vm/os.img .local/demo/web-os.img && cp .local/vm/os.img .local/demo/db-os.img
export StandbyCompute="UseLocalCompute=true;Dir=$PWD/.local/compute;Images=$PWD/.local/vm;Types=$(cd .. && pwd)/shared/reference/azure-types"
scripts/azurite.sh start
scripts/devhost.sh start
sleep 1
echo; echo "== The operator's console (the page the app serves; DEMO_KEEP=1 keeps it up after the demo): $console_url"
echo "   (it asks for a key: the local dev key, DevhostFunctionKey in local.settings.json)"
echo; echo "== 1. Health of every dependency (GET /api/v1/health)"
api http://127.0.0.1:7071/api/v1/health

echo; echo "== 2. Enable replication of '$group' (PUT /api/v1/groups/$group): 2 VMs x 2 disks x 64 MiB, each VM booting from its OS disk"
cat infra/local/demo-group.json
api -X PUT http://127.0.0.1:7071/api/v1/groups/$group --data @infra/local/demo-group.json > .local/put.json
grep -E '"(group|state|container)"' .local/put.json
echo "   (the four target page blobs, fixed VHDs <vm>/<disk>.vhd, are created in container $group-asr;"
echo "    the recovery resource group $group-asr with its production and isolated test networks:)"
grep -A14 '"targetResources"' .local/put.json | grep -E '"(resourceGroup|state|[a-z-]+/app)"' || true

echo; echo "== 3. Bad input is refused with the field named, and changes nothing"
api -X PUT http://127.0.0.1:7071/api/v1/groups/other -d '{"vms":[{"name":"vm1","disks":[{"name":"os","sizeBytes":1000,"source":"agent"}]}]}'
curl -sS -o /dev/null -w "without the function key: HTTP %{http_code}\n" http://127.0.0.1:7071/api/v1/groups

echo; echo "== 4. The agent: initial replication, then the workload on the data disks (${rate} MB/s) with a crash-consistent marker every 5 s"
bin/agent run -group $group -spec infra/local/demo-group.json -settings local.settings.json -state .local/agent -workload-rate "$rate" -workload-data-only -duration 30m \
  -marker-interval 5s -truth .local/truth.jsonl 2> .local/agent.log > .local/agent-summary.json &
agent_pid=$!
export STANDBY_API=http://127.0.0.1:7071/api STANDBY_API_KEY=$key
# The stretch the workload runs for, with where replication stands every 10 s (never a silent minute).
for ((waited = 0; waited < seconds; waited += 10)); do
  sleep $((seconds - waited < 10 ? seconds - waited : 10))
  bin/standby status $group | awk -v t="$((waited + 10 < seconds ? waited + 10 : seconds))" \
    '/^(state|replication|RPO|pending)/ { sub(/ +/, " "); line = line (line ? ", " : "") $0 } END { printf "   %3d s: %s\n", t, line }'
done
grep -E '"msg":"baseline complete"' .local/agent.log || true

echo; echo "== 5. A test failover drill to the newest point while replication goes on (standby failover --type test --wait)"
bin/standby failover $group --type test --point latestProcessed --wait | tee .local/test-failover.txt
test_job=$(awk '/queued/{print $2; exit}' .local/test-failover.txt)
point_seq=$(bin/standby job "$test_job" -o json | awk -F'"' '/"point"/{sub(/rp-/, "", $4); print $4; exit}')
bin/verify -group $group -settings local.settings.json -state .local/agent -container $group-test -truth .local/truth.jsonl -seq "$point_seq"
echo "-- the test VMs, booted from the point's disks in no network, on their serial consoles:"
grep -h STANDBY-GUEST-UP .local/compute/$group-asr/vms/*/serial.log
bin/standby cleanup-test $group --wait

echo; echo "== 6. A planned failover: the agent stops taking writes and flushes; the job waits for the final point"
bin/standby failover $group --type planned --wait | tee .local/planned.txt
wait $agent_pid
cat .local/agent-summary.json
echo "-- zero data loss: every failed-over disk against its source, byte for byte"
bin/verify -group $group -settings local.settings.json -state .local/agent -container $group-failover
echo "-- the failed-over VMs, running in the target region, on their serial consoles:"
grep -h STANDBY-GUEST-UP .local/compute/$group-asr/vms/*/serial.log

echo; echo "== 7. Group status (GET /api/v1/groups/$group), whole"
api http://127.0.0.1:7071/api/v1/groups/$group | tee .local/group.json

echo; echo "== 8. Proof: convergence, then byte-for-byte comparison of disks and marker snapshots (reads every disk and snapshot: about a quarter of a minute)"
bin/verify -group $group -settings local.settings.json -state .local/agent -truth .local/truth.jsonl

echo; echo "== 9. Recovery points cutpoints promoted from the markers (GET /api/v1/groups/$group/recovery-points)"
api "http://127.0.0.1:7071/api/v1/groups/$group/recovery-points?limit=3" > .local/points.json
grep -E '"(id|kind|sourceTime|from|to|journalCovers)"' .local/points.json
api http://127.0.0.1:7071/api/v1/groups/$group > .local/group.json
grep -E '"(health|healthReason|lastRecoveryPoint|points|oldestPoint)"' .local/group.json

echo; echo "== 10. Summary"
grep '"msg":"applied"' .local/devhost.log | sed -E 's/.*"rpoMs":([0-9]+).*/\1/' | sort -n > .local/rpo.txt
# What a marker's snapshot is for each disk: crash-consistent only where the capture is (the group's
# view says per disk; the OS disks here are read by scanning, which is not).
consistent=$(grep -c '"crashConsistent": true' .local/group.json || true)
disks=$(grep -c '"crashConsistent":' .local/group.json || true)
awk -v summary="$(cat .local/agent-summary.json)" -v consistent="$consistent" -v disks="$disks" '
  { v[NR] = $1 }
  END {
    if (NR == 0) { print "no apply records"; exit 1 }
    p50 = v[int((NR - 1) * 0.50) + 1]; p99 = v[int((NR - 1) * 0.99) + 1]
    match(summary, /"bytesWritten":[0-9]+/); bytes = substr(summary, RSTART + 15, RLENGTH - 15)
    match(summary, /"seconds":[0-9.]+/); secs = substr(summary, RSTART + 10, RLENGTH - 10)
    match(summary, /"markers":[0-9]+/); markers = substr(summary, RSTART + 10, RLENGTH - 10)
    printf "bytes replicated: %.1f MiB in %.0f s (%.1f MB/s)\n", bytes / 1048576, secs, bytes / 1048576 / secs
    printf "RPO (source write -> on the target disk), over %d write sets: p50 %.2f s, p99 %.2f s\n", NR, p50 / 1000, p99 / 1000
    printf "markers: %d, each a snapshot of all %d disks at one moment of the stream; crash-consistent for the %d disks whose capture is (the others: see capture in the group view)\n", markers, disks, consistent
  }' .local/rpo.txt
awk '/succeeded in/{sub(/s:.*/, "", $5); print "test failover RTO: " $5 " s from the request to every test VM healthy"; exit}' .local/test-failover.txt
awk '/succeeded in/{sub(/s:.*/, "", $5); print "planned failover: " $5 " s from the request to every VM healthy (RTO), RPO 0: nothing acknowledged was lost"; exit}' .local/planned.txt
