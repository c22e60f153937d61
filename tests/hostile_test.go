package tests

import (
	"context"
	"net/http"
	"strings"
	"sync"
	"testing"

	"github.com/standby-dr/standby/shared/replication"
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
