package tests

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/standby-dr/standby/shared/replication"
	"github.com/standby-dr/standby/shared/standin/memstore"
)

// Hostile input, tried as an attacker with a valid key would: each attack leaves what is stored as it
// was, and every group whole.

// Two first PUTs of one group with different specs, at once, 20 times: one is created (201) with its
// spec whole, the other is refused (409) naming the difference — never a mix of the two.
func TestConcurrentFirstEnablesDoNotMixSpecs(t *testing.T) {
	srv, _, state := newTestAPI(t)
	specs := []string{
		`{"vms":[{"name":"web","disks":[{"name":"os","sizeBytes":1048576,"source":"agent"}]}]}`,
		`{"vms":[{"name":"web","disks":[{"name":"os","sizeBytes":2097152,"source":"file:/dev/sdc"}]},{"name":"db","disks":[{"name":"os","sizeBytes":1048576,"source":"agent"}]}]}`,
	}
	for round := range 20 {
		group := "race" + itoa(round)
		statuses := make([]int, 2)
		bodies := make([]string, 2)
		var wg sync.WaitGroup
		for i := range specs {
			wg.Add(1)
			go func() {
				defer wg.Done()
				statuses[i], bodies[i] = call(t, srv, "PUT", "/api/v1/groups/"+group, specs[i])
			}()
		}
		wg.Wait()
		winner := -1
		for i, st := range statuses {
			switch st {
			case http.StatusCreated:
				winner = i
			case http.StatusConflict:
				if !strings.Contains(bodies[i], "group exists with a different spec") {
					t.Fatalf("round %d: the loser's 409: %s", round, bodies[i])
				}
			default:
				t.Fatalf("round %d: PUT answered %d: %s", round, st, bodies[i])
			}
		}
		if winner < 0 || statuses[0] == statuses[1] {
			t.Fatalf("round %d: statuses %v", round, statuses)
		}
		g, err := replication.LoadGroup(context.Background(), state, group)
		if err != nil {
			t.Fatal(err)
		}
		want := replication.GroupSpec{}
		replication.DecodeJSON([]byte(specs[winner]), &want, "spec", "a spec")
		want.Normalize(group)
		if conflicts := g.Spec.Conflicts(&want); len(conflicts) != 0 || len(g.Spec.VMs) != len(want.VMs) {
			t.Fatalf("round %d: the stored spec is not the winner's: %v", round, conflicts)
		}
	}
}

// A group cannot take another group's disks — neither by naming its container nor its blobs — and a
// group sharing a container deletes only its own disks.
func TestNoGroupTouchesAnothersDisks(t *testing.T) {
	srv, pages, state := newTestAPI(t)
	ctx := context.Background()
	victim := `{"vms":[{"name":"web","disks":[{"name":"os","sizeBytes":1048576,"source":"agent"}]}]}`
	if status, body := call(t, srv, "PUT", "/api/v1/groups/victim", victim); status != 201 {
		t.Fatalf("victim: %d %s", status, body)
	}
	ref := replication.DiskRef{Container: "victim-asr", Name: "web/os.vhd"}
	pages.WritePages(ctx, ref, 0, []byte(strings.Repeat("v", 4096)))
	before, _ := pages.ReadRange(ctx, ref, "", 0, 1<<20)
	for _, attack := range []struct{ spec, want string }{
		{`{"vms":[{"name":"web","disks":[{"name":"os","sizeBytes":1048576,"source":"agent"}]}],"target":{"container":"victim-asr"}}`,
			"victim-asr/web/os.vhd belongs to group victim"},
		{`{"vms":[{"name":"x","disks":[{"name":"os","sizeBytes":1048576,"source":"agent"}]}],"target":{"disks":{"x/os":"victim-asr/web/os.vhd"}}}`,
			"victim-asr/web/os.vhd belongs to group victim"},
	} {
		status, body := call(t, srv, "PUT", "/api/v1/groups/thief", attack.spec)
		if status != http.StatusConflict || !strings.Contains(body, attack.want) {
			t.Fatalf("taking the victim's disk: %d %s", status, body)
		}
		if status, _ := call(t, srv, "GET", "/api/v1/groups/thief", ""); status != http.StatusNotFound {
			t.Fatalf("a refused enable left the group: %d", status)
		}
	}
	// A neighbour in the same container, deleted with its data, takes only its own disk with it.
	neighbour := `{"vms":[{"name":"db","disks":[{"name":"os","sizeBytes":1048576,"source":"agent"}]}],"target":{"container":"victim-asr"}}`
	if status, body := call(t, srv, "PUT", "/api/v1/groups/neighbour", neighbour); status != 201 {
		t.Fatalf("neighbour: %d %s", status, body)
	}
	if status, body := call(t, srv, "DELETE", "/api/v1/groups/neighbour?keepData=false", ""); status != http.StatusNoContent {
		t.Fatalf("deleting the neighbour: %d %s", status, body)
	}
	if _, err := pages.Size(ctx, replication.DiskRef{Container: "victim-asr", Name: "db/os.vhd"}); err == nil {
		t.Fatal("the neighbour's own disk survived its deletion")
	}
	after, err := pages.ReadRange(ctx, ref, "", 0, 1<<20)
	if err != nil || string(after) != string(before) {
		t.Fatalf("the victim's disk changed: %v", err)
	}
	if g, err := replication.LoadGroup(ctx, state, "victim"); err != nil || g.Record.State != replication.StateInitialReplication {
		t.Fatalf("the victim's group: %v", err)
	}
}

// Numbers that would wedge a group or the API are refused or tamed, and a resync cannot be asked of a
// group that no longer replicates this way: each refusal names the field and changes nothing.
func TestWedgesAreRefused(t *testing.T) {
	srv, _, state := newTestAPI(t)
	ctx := context.Background()
	if status, body := call(t, srv, "PUT", "/api/v1/groups/shop", goodSpec); status != 201 {
		t.Fatalf("PUT: %d %s", status, body)
	}
	for body, want := range map[string]string{
		`{"seq":9223372036854775807}`:                                          "more than 1048576 batches past what was applied",
		`{"seq":1,"baselineRateBytesPerSecond":1e300,"baselineTotalBytes":10}`: "baselineRateBps must be",
	} {
		if status, resp := call(t, srv, "POST", "/api/v1/groups/shop/agent", body); status != 400 || !strings.Contains(resp, want) {
			t.Errorf("heartbeat %s: %d %s", body, status, resp)
		}
	}
	// A rate of 1e-310 bytes a second would make the ETA infinite: it is taken as no rate.
	if status, resp := call(t, srv, "POST", "/api/v1/groups/shop/agent", `{"seq":1,"baselineRateBytesPerSecond":1e-310,"baselineDoneBytes":1,"baselineTotalBytes":10}`); status != 200 {
		t.Fatalf("a tiny rate: %d %s", status, resp)
	}
	if status, resp := call(t, srv, "GET", "/api/v1/groups", ""); status != 200 || !strings.Contains(resp, `"group": "shop"`) {
		t.Fatalf("GET /groups after a tiny rate: %d %q", status, resp)
	}
	huge := strings.Replace(goodSpec, `"vms"`, `"policy":{"crashConsistentIntervalSeconds":1000000000000},"vms"`, 1)
	if status, resp := call(t, srv, "PUT", "/api/v1/groups/other", huge); status != 400 || !strings.Contains(resp, "policy.crashConsistentIntervalSeconds") {
		t.Fatalf("an interval past time.Duration: %d %s", status, resp)
	}
	replication.UpdateGroup(ctx, state, "shop", replication.AllRows, func(r *replication.GroupRecord) error {
		r.State = replication.StateFailedOver
		return nil
	})
	if status, resp := call(t, srv, "POST", "/api/v1/groups/shop/resync", ""); status != http.StatusConflict || !strings.Contains(resp, "the group is FailedOver") {
		t.Fatalf("resync of a failed-over group: %d %s", status, resp)
	}
	if g, _ := replication.LoadGroup(ctx, state, "shop"); g.Record.State != replication.StateFailedOver {
		t.Fatalf("the refused resync moved the group to %s", g.Record.State)
	}
}

// The deployment's quota of replicated bytes bounds what enabling can take: a group past it is
// refused, naming the quota, and nothing is stored.
func TestQuotaBoundsEnabling(t *testing.T) {
	pages, state := memstore.NewPages(), memstore.NewState()
	a := newAPI(state, pages, memstore.NewJournal(), nil)
	a.Groups.MaxTargetBytes = 3 << 20
	srv := httptest.NewServer(a.Handler())
	defer srv.Close()
	if status, body := call(t, srv, "PUT", "/api/v1/groups/first", goodSpec); status != http.StatusConflict { // 4 MiB past 3 MiB
		t.Fatalf("a group past the quota on its own: %d %s", status, body)
	}
	a.Groups.MaxTargetBytes = 6 << 20
	if status, body := call(t, srv, "PUT", "/api/v1/groups/first", goodSpec); status != 201 {
		t.Fatalf("within the quota: %d %s", status, body)
	}
	status, body := call(t, srv, "PUT", "/api/v1/groups/second", goodSpec)
	if status != http.StatusConflict || !strings.Contains(body, "more than its quota of 6291456 (StandbyMaxTargetBytes)") {
		t.Fatalf("past the quota: %d %s", status, body)
	}
	if status, _ := call(t, srv, "GET", "/api/v1/groups/second", ""); status != http.StatusNotFound {
		t.Fatalf("a group refused for the quota was stored: %d", status)
	}
}
