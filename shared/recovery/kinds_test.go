package recovery

import (
	"context"
	"errors"
	"log/slog"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/standby-dr/standby/shared/replication"
	"github.com/standby-dr/standby/shared/standin/memstore"
)

// The recipe for a new job kind (README, "Where a change goes"): one file that registers it. This test
// is such a file: the kind below is known to admission and the engine by its registration alone, is
// refused while its admission rule says so, and runs its steps once admitted.
var recipeSaid []string

var _ = register(Kind{
	Name: "recipe-check",
	Steps: []stepDef{{"say-hello", func(_ context.Context, _ *JobRunner, j *Job, g *replication.Group) (string, time.Duration, error) {
		recipeSaid = append(recipeSaid, g.Record.Group())
		return "hello from " + j.Type, 0, nil
	}}},
	Admits: func(rec *replication.GroupRecord) string {
		if rec.ActiveTestFailover != "" {
			return "not during a drill"
		}
		return ""
	},
})

func TestANewKindIsOneRegistration(t *testing.T) {
	ctx := context.Background()
	state, pages, q := memstore.NewState(), memstore.NewPages(), memstore.NewQueue(memstore.QueueOptions{})
	spec := replication.GroupSpec{VMs: []replication.VMSpec{{Name: "vm", Disks: []replication.DiskSpec{{Name: "d", SizeBytes: 1 << 20, Source: "agent"}}}}}
	spec.Normalize("g1")
	if _, err := replication.CreateGroup(ctx, state, "g1", spec, time.Now()); err != nil {
		t.Fatal(err)
	}
	adm := &Admission{State: state, Pages: pages, Jobs: q, Log: slog.New(slog.DiscardHandler), Now: time.Now}
	replication.UpdateGroup(ctx, state, "g1", replication.AllRows, func(r *replication.GroupRecord) error { r.ActiveTestFailover = "x"; return nil })
	if _, err := adm.Start(ctx, Request{Group: "g1", Type: "recipe-check"}); !errors.Is(err, replication.ErrState) || !strings.Contains(err.Error(), "not during a drill") {
		t.Fatalf("the kind's admission rule was not asked: %v", err)
	}
	replication.UpdateGroup(ctx, state, "g1", replication.AllRows, func(r *replication.GroupRecord) error { r.ActiveTestFailover = ""; return nil })
	job, err := adm.Start(ctx, Request{Group: "g1", Type: "recipe-check"})
	if err != nil {
		t.Fatal(err)
	}
	runner := &JobRunner{State: state, Pages: pages, Jobs: q, Log: slog.New(slog.DiscardHandler), Now: time.Now, MaxDeliveries: 3}
	msgs, err := q.Receive(ctx, 1, 0)
	if err != nil || len(msgs) != 1 {
		t.Fatalf("no job message: %v", err)
	}
	step, _ := DecodeStepMessage(msgs[0].Body)
	if err := runner.Run(ctx, step, 1); err != nil {
		t.Fatal(err)
	}
	done, _ := LoadJob(ctx, state, job.ID())
	if done.State != JobSucceeded || done.Steps[0].Outcome != "hello from recipe-check" || !slices.Equal(recipeSaid, []string{"g1"}) {
		t.Errorf("job %s, steps %+v, said %v", done.State, done.Steps, recipeSaid)
	}
	if _, err := adm.StartFailover(ctx, Request{Group: "g1", Type: "recipe-check"}); !errors.Is(err, replication.ErrInvalid) {
		t.Errorf("a kind that is not a failover started through StartFailover: %v", err)
	}
}

// Every kind is whole: steps with distinct names, and the failovers are the three the API names.
func TestKindsAreWhole(t *testing.T) {
	for _, name := range KindNames() {
		k, _ := KindOf(name)
		seen := map[string]bool{}
		for _, s := range k.Steps {
			if s.run == nil || seen[s.name] {
				t.Errorf("kind %s: step %q is nil or repeated", name, s.name)
			}
			seen[s.name] = true
		}
	}
	if got := FailoverKinds(); !slices.Equal(got, []string{JobPlannedFailover, JobTestFailover, JobUnplannedFailover}) {
		t.Errorf("failover kinds %v", got)
	}
	if _, err := KindOf("sideways"); err == nil || !strings.Contains(err.Error(), "want ") {
		t.Errorf("an unknown kind: %v", err)
	}
}
