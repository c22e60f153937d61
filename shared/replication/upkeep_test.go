package replication_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/standby-dr/standby/shared/replication"
	"github.com/standby-dr/standby/shared/standin/memstore"
)

func TestTickPrunesAppliedBatchesOutsideTheWindow(t *testing.T) {
	ctx := context.Background()
	state, journal := memstore.NewState(), memstore.NewJournal()
	now := time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC)
	spec := replication.GroupSpec{VMs: []replication.VMSpec{{Name: "vm", Disks: []replication.DiskSpec{{Name: "d", SizeBytes: 1 << 20, Source: "agent"}}}},
		Policy: replication.Policy{JournalWindowMinutes: 60}}
	spec.Normalize("g1")
	replication.CreateGroup(ctx, state, "g1", spec, now)
	replication.UpdateGroup(ctx, state, "g1", replication.AllRows, func(r *replication.GroupRecord) error { r.Watermark = 3; return nil })
	for seq := int64(1); seq <= 5; seq++ {
		journal.Now = func() time.Time { return now.Add(-2 * time.Hour) } // all stored two hours ago
		if seq == 2 {
			journal.Now = func() time.Time { return now.Add(-10 * time.Minute) } // inside the window
		}
		journal.Put(ctx, "g1", seq, []byte("x"))
	}
	f := &replication.Upkeep{Deps: replication.Deps{State: state, Journal: journal, Log: slog.New(slog.DiscardHandler), Now: func() time.Time { return now }}}
	logs, err := f.Run(ctx, replication.TimerRun{})
	if err != nil {
		t.Fatal(err)
	}
	seqs, _ := journal.List(ctx, "g1")
	// 1 and 3: applied and older than the window → pruned; 2: inside the window; 4, 5: not applied.
	if len(seqs) != 3 || seqs[0] != 2 || seqs[1] != 4 || seqs[2] != 5 {
		t.Fatalf("journal after the tick: %v, want [2 4 5] (logs %v)", seqs, logs)
	}
}

func TestTickRequestsMarkersAndRatesHealth(t *testing.T) {
	ctx := context.Background()
	state := memstore.NewState()
	now := time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC)
	spec := replication.GroupSpec{VMs: []replication.VMSpec{{Name: "vm", Disks: []replication.DiskSpec{{Name: "d", SizeBytes: 1 << 20, Source: "agent"}}}},
		Policy: replication.Policy{CrashConsistentIntervalSeconds: 300, AppConsistentIntervalSeconds: 3600}}
	spec.Normalize("g1")
	replication.CreateGroup(ctx, state, "g1", spec, now)
	replication.UpdateGroup(ctx, state, "g1", replication.AllRows, func(r *replication.GroupRecord) error {
		r.State, r.LastMarkerTime, r.LastSourceTime, r.LastPointTime = replication.StateProtected, now.Add(-6*time.Minute), now.Add(-20*time.Minute), now.Add(-6*time.Minute)
		return nil
	})
	f := &replication.Upkeep{Deps: replication.Deps{State: state, Log: slog.New(slog.DiscardHandler), Now: func() time.Time { return now }}}
	if _, err := f.Run(ctx, replication.TimerRun{}); err != nil {
		t.Fatal(err)
	}
	g, _ := replication.LoadGroup(ctx, state, "g1")
	if !g.Record.MarkerRequestedAt.Equal(now) || !g.Record.AppMarkerRequestedAt.Equal(now) {
		t.Fatalf("marker requests: crash %s app %s", g.Record.MarkerRequestedAt, g.Record.AppMarkerRequestedAt)
	}
	if g.Record.Health != replication.HealthWarning || g.Record.HealthReason != "RPO 20 min exceeds 15 min" {
		t.Fatalf("health %s %q", g.Record.Health, g.Record.HealthReason)
	}
	events, _ := replication.ListEvents(ctx, state, "g1")
	if len(events) != 2 || events[0].Message != "health raised (Warning): health Warning (was not rated): RPO 20 min exceeds 15 min" ||
		events[1].Message != "rpo-exceeded raised (Warning): RPO 20 min exceeds 15 min" {
		t.Fatalf("events %+v", events)
	}
	// Later, still no new point for an hour: critical (Site Recovery's 153007), one more event; the
	// crash marker request is not repeated while the last one is pending.
	later := now.Add(time.Hour)
	f.Now = func() time.Time { return later }
	f.Run(ctx, replication.TimerRun{})
	g, _ = replication.LoadGroup(ctx, state, "g1")
	if g.Record.Health != replication.HealthCritical || !strings.Contains(g.Record.HealthReason, "no crash-consistent recovery point for 1 h") ||
		!g.Record.MarkerRequestedAt.Equal(now) {
		t.Fatalf("an hour later: %s %q, marker requested at %s", g.Record.Health, g.Record.HealthReason, g.Record.MarkerRequestedAt)
	}
	if events, _ := replication.ListEvents(ctx, state, "g1"); len(events) != 4 || !strings.HasPrefix(events[0].Message, "health raised (Critical)") ||
		!strings.HasPrefix(events[1].Message, "no-recovery-point raised (Critical)") {
		t.Fatalf("events %+v", events)
	}
}

// A group whose agent stopped reporting (or whose reports are refused), or that waits for a resync, is
// not Healthy, whatever its RPO says: the reason names the agent's silence and the resync's cause.
func TestASilentAgentOrAPendingResyncIsNotHealthy(t *testing.T) {
	ctx := context.Background()
	state := memstore.NewState()
	now := time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC)
	spec := replication.GroupSpec{VMs: []replication.VMSpec{{Name: "vm", Disks: []replication.DiskSpec{{Name: "d", SizeBytes: 1 << 20, Source: "agent"}}}}}
	spec.Normalize("g1")
	replication.CreateGroup(ctx, state, "g1", spec, now)
	fresh := func(r *replication.GroupRecord) { // caught up, a point a minute old: Healthy by RPO alone
		r.State, r.LastMarkerTime, r.LastSourceTime, r.LastPointTime = replication.StateProtected, now.Add(-time.Minute), now.Add(-5*time.Minute), now.Add(-time.Minute)
	}
	f := &replication.Upkeep{Deps: replication.Deps{State: state, Log: slog.New(slog.DiscardHandler), Now: func() time.Time { return now }}}
	for _, c := range []struct {
		name   string
		set    func(r *replication.GroupRecord)
		health string
		reason string
	}{
		{"reporting", func(r *replication.GroupRecord) { r.AgentSeenAt = now.Add(-2 * time.Second) }, replication.HealthHealthy, ""},
		{"silent", func(r *replication.GroupRecord) { r.AgentSeenAt = now.Add(-4 * time.Minute) },
			replication.HealthWarning, "the agent has not reported for 4 min (last at 2026-11-26T11:56:00Z)"},
		{"waiting for a resync", func(r *replication.GroupRecord) {
			r.AgentSeenAt, r.State, r.Reason = now.Add(-2*time.Second), replication.StateResyncRequired, "sequence 7 is missing"
		}, replication.HealthWarning, "a resync is required (sequence 7 is missing)"},
	} {
		replication.UpdateGroup(ctx, state, "g1", replication.AllRows, func(r *replication.GroupRecord) error { fresh(r); c.set(r); return nil })
		if _, err := f.Run(ctx, replication.TimerRun{}); err != nil {
			t.Fatal(err)
		}
		g, _ := replication.LoadGroup(ctx, state, "g1")
		if g.Record.Health != c.health || !strings.Contains(g.Record.HealthReason, c.reason) || (c.reason == "") != (g.Record.HealthReason == "") {
			t.Errorf("%s: %s %q", c.name, g.Record.Health, g.Record.HealthReason)
		}
	}
}

// Each thing wrong comes with its code and what to do; where replication stands reads as AWS DRS's
// states; a group failed over is not rated at all.
func TestRateGroupSaysTheCauseAndTheNextStep(t *testing.T) {
	now := time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC)
	r := &replication.GroupRecord{}
	r.State, r.LastPointTime, r.LastSourceTime, r.LastAppliedAt = replication.StateProtected, now.Add(-time.Minute), now.Add(-10*time.Second), now.Add(-10*time.Second)
	r.AgentSeenAt, r.AgentSeq, r.Watermark = now.Add(-time.Second), 10, 10
	if level, errs := replication.RateGroup(r, now); level != replication.HealthHealthy || len(errs) != 0 || replication.ReplicationState(r, now) != "continuous" {
		t.Fatalf("caught up: %s %+v %s", level, errs, replication.ReplicationState(r, now))
	}
	r.AgentSeq, r.LastAppliedAt = 14, now.Add(-3*time.Minute)
	level, errs := replication.RateGroup(r, now)
	if level != replication.HealthWarning || len(errs) != 1 || errs[0].Code != replication.HealthApplyStalled ||
		errs[0].Message != "4 batches wait to be applied and none was applied for 3 min" || !strings.Contains(errs[0].Action, "apply function") ||
		replication.ReplicationState(r, now) != "stalled" {
		t.Fatalf("stalled: %s %+v %s", level, errs, replication.ReplicationState(r, now))
	}
	r.AgentSeenAt, r.AgentLastError = now.Add(-5*time.Minute), "storing batch: cache unavailable (at 2026-11-26T11:55:00Z)"
	if _, errs := replication.RateGroup(r, now); len(errs) != 1 || errs[0].Code != replication.HealthAgentSilent || !strings.Contains(errs[0].Action, "systemctl status standby-agent") ||
		!strings.HasSuffix(errs[0].Message, "; its last error: storing batch: cache unavailable (at 2026-11-26T11:55:00Z)") ||
		replication.ReplicationState(r, now) != "disconnected" {
		t.Fatalf("silent: %+v %s", errs, replication.ReplicationState(r, now))
	}
	r.State = replication.StateFailedOver
	if level, errs := replication.RateGroup(r, now); level != "" || errs != nil || replication.ReplicationState(r, now) != "stopped" {
		t.Fatalf("failed over: %q %+v", level, errs)
	}
}

// A group's history comes in pages, and the timer prunes what is older than the retention.
func TestHistoryIsPagedAndPruned(t *testing.T) {
	ctx := context.Background()
	state := memstore.NewState()
	now := time.Date(2026, 11, 29, 12, 0, 0, 0, time.UTC)
	spec := replication.GroupSpec{VMs: []replication.VMSpec{{Name: "vm", Disks: []replication.DiskSpec{{Name: "d", SizeBytes: 1 << 20, Source: "agent"}}}}}
	spec.Normalize("g1")
	replication.CreateGroup(ctx, state, "g1", spec, now)
	for i := range 5 {
		replication.RecordEvent(ctx, state, "g1", "health", fmt.Sprint("event ", i), now.Add(-time.Duration(i)*24*time.Hour))
	}
	replication.RecordEvent(ctx, state, "g1", "health", "old", now.Add(-31*24*time.Hour))
	deps := replication.Deps{State: state, Pages: memstore.NewPages(), Log: slog.New(slog.DiscardHandler), Now: func() time.Time { return now }}
	groups, upkeep := &replication.Groups{Deps: deps}, &replication.Upkeep{Deps: deps}
	var seen []string
	after := ""
	for page := 0; ; page++ {
		events, next, err := groups.Events(ctx, "g1", 2, after)
		if err != nil || page > 4 {
			t.Fatalf("page %d: %v", page, err)
		}
		for _, e := range events {
			seen = append(seen, e.Message)
		}
		if next == "" {
			break
		}
		after = next
	}
	if len(seen) != 6 || seen[0] != "event 0" || seen[5] != "old" {
		t.Fatalf("paged history: %v", seen)
	}
	if _, _, err := groups.Events(ctx, "g1", 100000, ""); !errors.Is(err, replication.ErrInvalid) {
		t.Fatalf("an unbounded page: %v", err)
	}
	if _, err := upkeep.Run(ctx, replication.TimerRun{}); err != nil {
		t.Fatal(err)
	}
	if events, _ := replication.ListEvents(ctx, state, "g1"); len(events) != 5 || events[len(events)-1].Message != "event 4" {
		t.Fatalf("after pruning: %d events", len(events))
	}
}

// Durations in what the API says read as a person writes them, to the second.
func TestHumanDuration(t *testing.T) {
	for d, want := range map[time.Duration]string{0: "0 s", 1400 * time.Millisecond: "1 s", 45 * time.Second: "45 s", 236 * time.Second: "3 min 56 s",
		2 * time.Minute: "2 min", 125 * time.Minute: "2 h 5 min", time.Hour: "1 h", 76 * time.Hour: "3 d 4 h", -time.Second: "0 s"} {
		if got := replication.HumanDuration(d); got != want {
			t.Errorf("%v: %q, want %q", d, got, want)
		}
	}
}
