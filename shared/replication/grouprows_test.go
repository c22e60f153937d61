package replication_test

import (
	"context"
	"errors"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/standby-dr/standby/shared/replication"
	"github.com/standby-dr/standby/shared/standin/memstore"
)

// conflictCounter counts the transactions a store refused for a changed ETag.
type conflictCounter struct {
	*memstore.State
	conflicts atomic.Int64
}

func (c *conflictCounter) Transact(ctx context.Context, table string, ops []replication.TxOp) error {
	err := c.State.Transact(ctx, table, ops)
	if errors.Is(err, replication.ErrConflict) {
		c.conflicts.Add(1)
	}
	return err
}

func enabledGroup(t *testing.T, state replication.StateStore) *replication.Groups {
	t.Helper()
	groups := &replication.Groups{Deps: replication.Deps{State: state, Pages: memstore.NewPages(), Log: slog.New(slog.DiscardHandler), Now: time.Now}}
	spec := replication.GroupSpec{VMs: []replication.VMSpec{{Name: "vm", Disks: []replication.DiskSpec{{Name: "d", SizeBytes: 1 << 20, Source: "agent"}}}}}
	if _, _, err := groups.Enable(context.Background(), "g1", spec); err != nil {
		t.Fatal(err)
	}
	return groups
}

// rowKeys lists the rows of a group's partition.
func rowKeys(t *testing.T, state replication.StateStore, group string) []string {
	t.Helper()
	rows, _, err := replication.QueryAll[replication.Keys](context.Background(), state, replication.GroupsTable, group)
	if err != nil {
		t.Fatal(err)
	}
	var keys []string
	for _, k := range rows {
		keys = append(keys, k.RowKey)
	}
	return keys
}

// Apply, the heartbeat, the timer and the operator's jobs each write their own row: running them all
// at once, none ever waits for another, and nothing any of them wrote is lost.
func TestWritersOfDifferentRowsNeverContend(t *testing.T) {
	ctx := context.Background()
	state := &conflictCounter{State: memstore.NewState()}
	enabledGroup(t, state)
	if got := strings.Join(rowKeys(t, state, "g1"), " "); !strings.HasPrefix(got, "agent health progress state vm~") {
		t.Fatalf("a new group's rows: %s", got)
	}
	const n = 200
	writers := map[replication.GroupRows]func(r *replication.GroupRecord){
		replication.ProgressRow: func(r *replication.GroupRecord) { r.Watermark++ },
		replication.AgentRow:    func(r *replication.GroupRecord) { r.AgentSeq++ },
		replication.HealthRow:   func(r *replication.GroupRecord) { r.AlertSeq++ },
		replication.StateRow:    func(r *replication.GroupRecord) { r.Reason += "." },
	}
	var wg sync.WaitGroup
	for rows, write := range writers {
		wg.Go(func() {
			for range n {
				if _, err := replication.UpdateGroup(ctx, state, "g1", rows, func(r *replication.GroupRecord) error { write(r); return nil }); err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	if c := state.conflicts.Load(); c != 0 {
		t.Errorf("%d conflicts between writers of different rows", c)
	}
	g, err := replication.LoadGroup(ctx, state, "g1")
	if err != nil {
		t.Fatal(err)
	}
	if r := g.Record; r.Watermark != n || r.AgentSeq != n || r.AlertSeq != n || len(r.Reason) != n {
		t.Fatalf("lost writes: watermark %d, agent seq %d, alert seq %d, reason %d (want %d each)", r.Watermark, r.AgentSeq, r.AlertSeq, len(r.Reason), n)
	}

	// Writers of one row do contend, and their ETags make them take turns: nothing is lost.
	state.conflicts.Store(0)
	for range 4 {
		wg.Go(func() {
			for range n / 4 {
				replication.UpdateGroup(ctx, state, "g1", replication.ProgressRow, func(r *replication.GroupRecord) error { r.BatchesApplied++; return nil })
			}
		})
	}
	wg.Wait()
	if g, _ := replication.LoadGroup(ctx, state, "g1"); g.Record.BatchesApplied != n {
		t.Fatalf("one row's writers lost writes: %d of %d", g.Record.BatchesApplied, n)
	}
	t.Logf("%d conflicts among 4 writers of one row, all retried", state.conflicts.Load())
}

// A change that writes a row it did not name is refused whole: a bug, not a write silently lost.
func TestChangeToAnUnnamedRowIsRefused(t *testing.T) {
	ctx := context.Background()
	state := memstore.NewState()
	enabledGroup(t, state)
	_, err := replication.UpdateGroup(ctx, state, "g1", replication.AgentRow, func(r *replication.GroupRecord) error {
		r.AgentSeq, r.Watermark = 7, 7
		return nil
	})
	if err == nil || !strings.Contains(err.Error(), "named the rows agent but changed the progress row") {
		t.Fatalf("err = %v", err)
	}
	if g, _ := replication.LoadGroup(ctx, state, "g1"); g.Record.AgentSeq != 0 || g.Record.Watermark != 0 {
		t.Fatalf("a refused change wrote: %+v", g.Record)
	}
}

// A change that moves state and progress together (apply starting a resync) is one transaction
// guarded on both rows: a state change made meanwhile sends it back to read again.
func TestStateAndProgressMoveTogether(t *testing.T) {
	ctx := context.Background()
	state := memstore.NewState()
	groups := enabledGroup(t, state)
	replication.UpdateGroup(ctx, state, "g1", replication.StateRow, func(r *replication.GroupRecord) error {
		return r.Move(replication.StateProtected, "", time.Now())
	})
	tries := 0
	_, err := replication.UpdateGroup(ctx, state, "g1", replication.StateRow|replication.ProgressRow, func(r *replication.GroupRecord) error {
		if tries++; tries == 1 { // the operator disables the group between this read and its write
			if _, err := groups.Disable(ctx, "g1", true); err != nil {
				t.Fatal(err)
			}
		}
		if r.State != replication.StateProtected {
			return replication.ErrUnchanged
		}
		r.Watermark = 5
		return r.Move(replication.StateResyncing, "", time.Now())
	})
	g, _ := replication.LoadGroup(ctx, state, "g1")
	if err != nil || tries != 2 || g.Record.State != replication.StateDisabled || g.Record.Watermark != 0 {
		t.Fatalf("err %v, tries %d, state %s, watermark %d: the disable was overwritten", err, tries, g.Record.State, g.Record.Watermark)
	}
}

// legacyRecord is a group's state row as it was written before the split: every part in one row.
type legacyRecord struct {
	replication.Keys
	Claim           string
	StreamKey       string
	State           replication.State
	VMNames         []string
	Watermark       int64
	LastMarkerSeq   int64
	AgentSeq        int64
	AgentStoppedSeq int64
	LastPointTime   time.Time
	AlertSeq        int64
}

// A group written before the split loads as it was, and keeps every part when one row is written:
// the parts it does not hold yet get their rows in the same transaction, from its state row.
func TestRecordFromBeforeTheSplitKeepsEveryPart(t *testing.T) {
	ctx := context.Background()
	state := memstore.NewState()
	enabledGroup(t, state)
	g, _ := replication.LoadGroup(ctx, state, "g1")
	for _, row := range []string{"progress", "agent", "health"} {
		state.Delete(ctx, replication.GroupsTable, "g1", row, "")
	}
	pointTime := time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)
	old := legacyRecord{Keys: replication.Keys{PartitionKey: "g1", RowKey: "state"}, Claim: g.Record.Claim, StreamKey: g.Record.StreamKey,
		State: replication.StateProtected, VMNames: []string{"vm"}, Watermark: 41, LastMarkerSeq: 40, AgentSeq: 44, AgentStoppedSeq: 3, LastPointTime: pointTime, AlertSeq: 2}
	if _, err := state.Upsert(ctx, replication.GroupsTable, old); err != nil {
		t.Fatal(err)
	}
	check := func(when string) {
		t.Helper()
		g, err := replication.LoadGroup(ctx, state, "g1")
		if err != nil {
			t.Fatal(when, err)
		}
		r := g.Record
		if r.State != replication.StateProtected || r.Watermark != 41 || r.LastMarkerSeq != 40 || r.AgentSeq != 44 || r.AgentStoppedSeq != 3 || !r.LastPointTime.Equal(pointTime) || r.AlertSeq != 2 {
			t.Fatalf("%s: %+v", when, r)
		}
	}
	check("as written before the split")
	if _, err := replication.UpdateGroup(ctx, state, "g1", replication.StateRow, func(r *replication.GroupRecord) error { r.Reason = "x"; return nil }); err != nil {
		t.Fatal(err)
	}
	check("after its state row was written")
	if got := strings.Join(rowKeys(t, state, "g1"), " "); !strings.HasPrefix(got, "agent health progress state vm~") {
		t.Fatalf("rows after the first write: %s", got)
	}
}

// A group made again after a deletion that stopped halfway starts from nothing: the old group's
// leftover rows are replaced, never read as the new group's progress.
func TestNewGroupReplacesLeftoverRows(t *testing.T) {
	ctx := context.Background()
	state := memstore.NewState()
	enabledGroup(t, state)
	replication.UpdateGroup(ctx, state, "g1", replication.ProgressRow|replication.AgentRow, func(r *replication.GroupRecord) error {
		r.Watermark, r.AgentSeq = 99, 99
		return nil
	})
	state.Delete(ctx, replication.GroupsTable, "g1", "state", "") // the deletion stopped after the state row
	if _, err := replication.LoadGroup(ctx, state, "g1"); !errors.Is(err, replication.ErrNoGroup) {
		t.Fatalf("a group without its state row: %v", err)
	}
	if _, err := replication.UpdateGroup(ctx, state, "g1", replication.ProgressRow, func(r *replication.GroupRecord) error { return nil }); !errors.Is(err, replication.ErrNoGroup) {
		t.Fatalf("a write to a deleted group: %v", err)
	}
	enabledGroup(t, state)
	if g, _ := replication.LoadGroup(ctx, state, "g1"); g.Record.Watermark != 0 || g.Record.AgentSeq != 0 {
		t.Fatalf("the new group read the old one's rows: watermark %d, agent seq %d", g.Record.Watermark, g.Record.AgentSeq)
	}
}
