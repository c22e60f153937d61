package replication_test

import (
	"context"
	"errors"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/standby-dr/standby/shared/replication"
	"github.com/standby-dr/standby/shared/standin/memstore"
)

// quarantineDown is state storage whose quarantine table refuses every write.
type quarantineDown struct{ *memstore.State }

func (q quarantineDown) Upsert(ctx context.Context, table string, e any) (replication.ETag, error) {
	if table == replication.QuarantineTable {
		return "", errors.New("PropertyValueTooLarge")
	}
	return q.State.Upsert(ctx, table, e)
}

// A forged event costs at most its quarantine row: a row that cannot be written (a property too large,
// the table unavailable) is logged and the batch carries on, and what is kept of an event is bounded.
func TestQuarantineNeverFailsTheBatch(t *testing.T) {
	ctx := context.Background()
	a := &replication.Applier{State: quarantineDown{memstore.NewState()}, Pages: memstore.NewPages(), Journal: memstore.NewJournal(),
		Log: slog.New(slog.DiscardHandler), Now: time.Now}
	events := []replication.StreamEvent{{SequenceNumber: 1, Body: []byte(strings.Repeat("x", 200<<10))}, {SequenceNumber: 2, Body: []byte("{")}}
	logs, err := a.ApplyEvents(ctx, "0", events)
	if err != nil || len(logs) != 2 {
		t.Fatalf("a batch of forged events with the quarantine down: %v %q", err, logs)
	}
	state := memstore.NewState()
	a.State = state
	if _, err := a.ApplyEvents(ctx, "0", events[:1]); err != nil {
		t.Fatal(err)
	}
	rows, _, err := replication.QueryAll[replication.QuarantineRecord](ctx, state, replication.QuarantineTable, "partition-0")
	if err != nil || len(rows) != 1 {
		t.Fatalf("%d quarantine rows (%v)", len(rows), err)
	}
	if n := len(rows[0].Body) + len(rows[0].Reason); n > 8<<10 || !strings.Contains(rows[0].Reason, "more than the 2048") {
		t.Fatalf("the quarantined 200 KB event keeps %d bytes, reason %q", n, rows[0].Reason)
	}
}
