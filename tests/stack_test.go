package tests

import (
	"context"
	"encoding/json"
	"log/slog"
	"os"
	"testing"
	"time"

	"github.com/standby-dr/standby/shared/agent"
	"github.com/standby-dr/standby/shared/api/apiv1"
	"github.com/standby-dr/standby/shared/azure/azconn"
	"github.com/standby-dr/standby/shared/azure/journal"
	"github.com/standby-dr/standby/shared/azure/pageblobs"
	"github.com/standby-dr/standby/shared/replication"
	"github.com/standby-dr/standby/shared/standin/broker"
	"github.com/standby-dr/standby/shared/testkit/testenv"
)

// stack is the whole local pipeline for one test: devhost running the repository's four functions with
// the real handler, Azurite for both regions, the embedded broker file, and a per-test journal container.
type stack struct {
	app           *testApp
	target, cache string
	// direct is the target storage without any fault proxy: agents and verifiers read it.
	direct      string
	journalName string
	values      map[string]string
}

func newStack(t testing.TB, schedule string) *stack {
	t.Helper()
	return newStackWith(t, schedule, testenv.Storage(t, "target"))
}

// newStackWith lets a test put something (a fault proxy) between the handler and target storage.
func newStackWith(t testing.TB, schedule, target string) *stack {
	t.Helper()
	s := defineStack(t, schedule, target, testenv.Storage(t, "target"), testenv.Storage(t, "source"))
	s.app.start(t)
	return s
}

// defineStack writes a stack's app without starting it: apply writes target, the journal lives in cache.
func defineStack(t testing.TB, schedule, target, direct, cache string) *stack {
	t.Helper()
	s := &stack{target: target, direct: direct, cache: cache, journalName: testenv.Unique("journal")}
	s.values = map[string]string{"StandbyTargetStorage": s.target, "StandbyCacheStorage": s.cache, "StandbyChangeHub": "changes",
		"StandbyApplyConsumerGroup": "apply", "StandbyJobQueue": "jobs", "StandbyCutpointsSchedule": schedule, "StandbyAlertsSchedule": "*/2 * * * * *",
		"StandbyJournalContainer": s.journalName}
	s.app = newApp(t, appSpec{handler: "handler",
		functions: map[string]string{"apply": repoFunction(t, "apply"), "failover": repoFunction(t, "failover"),
			"api": repoFunction(t, "api"), "cutpoints": repoFunction(t, "cutpoints"), "agentapi": repoFunction(t, "agentapi"),
			"alerts": repoFunction(t, "alerts"), "console": repoFunction(t, "console"),
			"reader": repoFunction(t, "reader"), "peer": repoFunction(t, "peer"),
			"identity": repoFunction(t, "identity")},
		values: s.values,
		broker: broker.Config{EventHubs: []broker.HubConfig{{Name: "changes", PartitionCount: 4}},
			Queues: []broker.QueueConfig{{Name: "jobs", RequiresSession: true, LockDurationSeconds: 30, MaxDeliveryCount: 10}}}})
	return s
}

// peerValues make a stack's peer the other: its API, and a key of its peer function alone, which
// opens the peer calls and nothing else.
func peerValues(t testing.TB, other *stack) map[string]string {
	other.app.setValues(t, map[string]string{"DevhostFunctionKey__peer": "peer-key"})
	return map[string]string{"StandbyPeerApi": other.apiBase(), "StandbyPeerApiKey": "peer-key"}
}

// newSitePair is the two regions' deployments, each the other's peer (StandbyPeerApi): the forward one
// applies in the target region (journal in the source region's cache account); the reverse one applies
// in the source region, its cache account in the target region, with its own broker.
func newSitePair(t testing.TB, schedule string) (fwd, rev *stack) {
	t.Helper()
	source, target := testenv.Storage(t, "source"), testenv.Storage(t, "target")
	fwd = defineStack(t, schedule, target, target, source)
	rev = defineStack(t, schedule, source, source, target)
	fwd.app.setValues(t, peerValues(t, rev))
	rev.app.setValues(t, peerValues(t, fwd))
	fwd.app.start(t)
	rev.app.start(t)
	return fwd, rev
}

// env is the environment an agent process needs to reach this stack.
func (s *stack) env() []string {
	env := os.Environ()
	for k, v := range s.values {
		if k == "StandbyTargetStorage" {
			v = s.direct // the verifier reads storage directly, never through a fault proxy
		}
		env = append(env, k+"="+v)
	}
	return append(env, "StandbyEventHubs=UseEmbeddedBroker=true;Path="+s.app.brokerPath, "STANDBY_API_KEY=test-key",
		"STANDBY_API="+s.apiBase())
}

func (s *stack) apiBase() string { return "http://127.0.0.1:" + itoa(s.app.port) + "/api" }

// agent opens an in-process agent on the stack (journal in the cache Azurite, stream in the broker).
func (s *stack) agent(t testing.TB, group string, disks []replication.DiskRefSpec) *agent.Agent {
	t.Helper()
	svc, err := pageblobs.ServiceClient(azconn.Setting{Name: "cache", ConnectionString: s.cache})
	if err != nil {
		t.Fatal(err)
	}
	b := s.app.broker(t)
	a, _, err := agent.Open(context.Background(), agent.Config{Group: group, Disks: disks, Journal: journal.New(svc, s.journalName), StreamKey: s.streamKey(t, group),
		Publisher: broker.NewChangePublisher(b, "changes"), StateDir: t.TempDir(), MaxBatchDelay: 10 * time.Millisecond,
		Log: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	return a
}

// twoVMAgent enables a group of VMs a and b with one 4 MiB "agent" disk each, opens an in-process agent
// on it and puts the baseline marker in (the disks start empty).
func (s *stack) twoVMAgent(t testing.TB, group string) (*agent.Agent, []replication.DiskRefSpec) {
	t.Helper()
	status, _, body := s.app.call(t, "PUT", "/api/v1/groups/"+group, "test-key",
		`{"vms":[{"name":"a","disks":[{"name":"d","sizeBytes":4194304,"source":"agent"}]},{"name":"b","disks":[{"name":"d","sizeBytes":4194304,"source":"agent"}]}]}`)
	if status != 201 {
		t.Fatalf("PUT: %d %s", status, body)
	}
	disks := []replication.DiskRefSpec{
		{Key: "a/d", VM: "a", Spec: replication.DiskSpec{Name: "d", SizeBytes: 4 << 20, Source: "agent"}},
		{Key: "b/d", VM: "b", Spec: replication.DiskSpec{Name: "d", SizeBytes: 4 << 20, Source: "agent"}},
	}
	a := s.agent(t, group, disks)
	a.Marker("crash", true)
	return a, disks
}

// groupView is the group as the operator's API shows it (zero when the call fails: waits retry it).
func (s *stack) groupView(t testing.TB, group string) apiv1.GroupView {
	t.Helper()
	_, _, body := s.app.call(t, "GET", "/api/v1/groups/"+group, "test-key", "")
	return groupViewOf(body)
}

// streamKey is the group's change-stream key, as the API gives it to the group's agents.
func (s *stack) streamKey(t testing.TB, group string) []byte {
	t.Helper()
	status, _, body := s.app.call(t, "GET", "/api/v1/groups/"+group+"/stream-key", "test-key", "")
	var v apiv1.StreamKeyView
	if status != 200 || json.Unmarshal([]byte(body), &v) != nil {
		t.Fatalf("stream key of %s: %d %s", group, status, body)
	}
	key, err := replication.DecodeStreamKey(v.StreamKey)
	if err != nil {
		t.Fatal(err)
	}
	return key
}
