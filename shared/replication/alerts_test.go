package replication_test

import (
	"context"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/standby-dr/standby/shared/replication"
	"github.com/standby-dr/standby/shared/standin/memstore"
)

// outbox is the alerts raised so far, as "kind status severity", oldest first.
func outbox(t *testing.T, state replication.StateStore) []string {
	t.Helper()
	rows, _, err := replication.QueryAll[replication.AlertRow](context.Background(), state, replication.AlertsTable, replication.AlertPartition)
	if err != nil {
		t.Fatal(err)
	}
	slices.SortFunc(rows, func(a, b replication.AlertRow) int { return strings.Compare(a.ID, b.ID) })
	var out []string
	for _, r := range rows {
		if r.Delivery != replication.DeliveryPending {
			t.Errorf("alert %s raised as %q, want pending", r.ID, r.Delivery)
		}
		out = append(out, fmt.Sprintf("%s %s %s%s", r.Kind, r.Status, r.Severity, map[bool]string{true: " " + r.Health}[r.Health != ""]))
	}
	return out
}

// Alerts follow changes of condition, one each, whatever the number of ticks; a tick that crashed
// after raising but before recording raises the same alerts again, which changes nothing.
func TestAlertsAreRaisedOncePerChange(t *testing.T) {
	ctx := context.Background()
	state := memstore.NewState()
	now := time.Date(2026, 11, 30, 12, 0, 0, 0, time.UTC)
	spec := replication.GroupSpec{VMs: []replication.VMSpec{{Name: "vm", Disks: []replication.DiskSpec{{Name: "d", SizeBytes: 1 << 20, Source: "agent"}}}},
		Policy: replication.Policy{CrashConsistentIntervalSeconds: 300, RPOWarningMinutes: 15, RPOCriticalMinutes: 30, NoPointCriticalMinutes: 60}}
	spec.Normalize("g1")
	replication.CreateGroup(ctx, state, "g1", spec, now)
	f := &replication.Upkeep{Deps: replication.Deps{State: state, Log: slog.New(slog.DiscardHandler)}}
	at := func(when time.Time, change func(r *replication.GroupRecord)) {
		t.Helper()
		if change != nil {
			replication.UpdateGroup(ctx, state, "g1", replication.AllRows, func(r *replication.GroupRecord) error { change(r); return nil })
		}
		f.Now = func() time.Time { return when }
		if _, err := f.Run(ctx, replication.TimerRun{}); err != nil {
			t.Fatal(err)
		}
	}
	fresh := func(r *replication.GroupRecord) { // replicating, a point a minute old
		r.State, r.LastSourceTime, r.AgentSeenAt, r.LastPointTime, r.LastMarkerTime = replication.StateProtected, now, now, now, now
	}
	at(now, func(r *replication.GroupRecord) { r.State = replication.StateInitialReplication })
	if got := outbox(t, state); len(got) != 0 {
		t.Fatalf("initial replication alerted %v", got)
	}
	at(now, fresh)
	at(now.Add(time.Minute), nil)
	if got := outbox(t, state); len(got) != 0 {
		t.Fatalf("a healthy group alerted %v", got)
	}
	// The agent stops: Warning at 16 minutes, Critical at 31, the same for the ticks between.
	for m := 16; m <= 40; m++ {
		at(now.Add(time.Duration(m)*time.Minute), func(r *replication.GroupRecord) { r.LastPointTime = now.Add(time.Duration(m) * time.Minute) })
	}
	want := []string{"health raised Warning Warning", "rpo-exceeded raised Warning", "health raised Critical Critical"}
	if got := outbox(t, state); !slices.Equal(got, want) {
		t.Fatalf("after the agent stopped: %v, want %v", got, want)
	}
	// A crash between raising and recording: the tick runs again from the same row.
	before, _ := replication.LoadGroup(ctx, state, "g1")
	at(now.Add(101*time.Minute), nil) // no point for an hour now, too
	events, _ := replication.ListEvents(ctx, state, "g1")
	replication.UpdateGroup(ctx, state, "g1", replication.AllRows, func(r *replication.GroupRecord) error {
		r.Alerted, r.AlertSeq = before.Record.Alerted, before.Record.AlertSeq
		return nil
	})
	at(now.Add(101*time.Minute), nil)
	want = append(want, "no-recovery-point raised Critical")
	if got := outbox(t, state); !slices.Equal(got, want) {
		t.Fatalf("after a repeated tick: %v, want %v", got, want)
	}
	if again, _ := replication.ListEvents(ctx, state, "g1"); len(again) != len(events) {
		t.Fatalf("the repeated tick recorded %d events, want %d", len(again), len(events))
	}
	// The agent is back: one Healthy alert, and each condition resolved.
	back := now.Add(102 * time.Minute)
	at(back, func(r *replication.GroupRecord) { r.LastSourceTime, r.AgentSeenAt, r.LastPointTime = back, back, back })
	at(back.Add(time.Minute), nil)
	want = append(want, "health resolved Informational Healthy", "no-recovery-point resolved Informational", "rpo-exceeded resolved Informational")
	if got := outbox(t, state); !slices.Equal(got, want) {
		t.Fatalf("after the agent came back: %v, want %v", got, want)
	}
	// Replication stops (a resync is needed), then resumes.
	at(back.Add(2*time.Minute), func(r *replication.GroupRecord) {
		r.State, r.Reason = replication.StateResyncRequired, "a batch is missing"
	})
	at(back.Add(3*time.Minute), func(r *replication.GroupRecord) { r.State = replication.StateResyncing })
	want = append(want, "replication-stopped raised Critical", "replication-stopped resolved Informational")
	if got := outbox(t, state); !slices.Equal(got, want) {
		t.Fatalf("after a resync: %v, want %v", got, want)
	}
}

// A group with a drill schedule and no successful drill within its window raises drill-overdue once;
// a drill succeeding resolves it.
func TestDrillOverdueIsAlertedOncePerStretch(t *testing.T) {
	ctx := context.Background()
	state := memstore.NewState()
	now := time.Date(2026, 11, 30, 12, 0, 0, 0, time.UTC)
	spec := replication.GroupSpec{VMs: []replication.VMSpec{{Name: "vm", Disks: []replication.DiskSpec{{Name: "d", SizeBytes: 1 << 20, Source: "agent"}}}},
		Drill: replication.DrillSpec{Schedule: "0 3 * * SUN", ReadinessDays: 2}}
	spec.Normalize("g1")
	replication.CreateGroup(ctx, state, "g1", spec, now)
	f := &replication.Upkeep{Deps: replication.Deps{State: state, Log: slog.New(slog.DiscardHandler)}}
	at := func(when time.Time) {
		t.Helper()
		replication.UpdateGroup(ctx, state, "g1", replication.AllRows, func(r *replication.GroupRecord) error {
			r.State, r.LastSourceTime, r.AgentSeenAt, r.LastPointTime, r.LastMarkerTime = replication.StateProtected, when, when, when, when
			return nil
		})
		f.Now = func() time.Time { return when }
		if _, err := f.Run(ctx, replication.TimerRun{}); err != nil {
			t.Fatal(err)
		}
	}
	at(now.Add(47 * time.Hour))
	if got := outbox(t, state); len(got) != 0 {
		t.Fatalf("within the window: %v", got)
	}
	at(now.Add(49 * time.Hour))
	at(now.Add(50 * time.Hour))
	if got := outbox(t, state); !slices.Equal(got, []string{"drill-overdue raised Warning"}) {
		t.Fatalf("past the window: %v", got)
	}
	replication.UpdateGroup(ctx, state, "g1", replication.StateRow, func(r *replication.GroupRecord) error {
		r.LastDrillSucceededAt, r.LastDrillResult = now.Add(50*time.Hour), "Succeeded"
		return nil
	})
	at(now.Add(51 * time.Hour))
	if got := outbox(t, state); !slices.Equal(got, []string{"drill-overdue raised Warning", "drill-overdue resolved Informational"}) {
		t.Fatalf("after a successful drill: %v", got)
	}
}
