package storetest

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/standby-dr/standby/shared/replication"
)

// Watermark is a sample entity with every kind of field the domain stores.
type Watermark struct {
	replication.Keys
	Sequence   int64             `json:"Sequence"`
	Bytes      int64             `json:"Bytes"`
	Applied    time.Time         `json:"Applied"`
	State      string            `json:"State"`
	Healthy    bool              `json:"Healthy"`
	Ratio      float64           `json:"Ratio"`
	Snapshots  map[string]string `json:"Snapshots,omitempty"`
	Recent     []int64           `json:"Recent,omitempty"`
	Optional   *int              `json:"Optional,omitempty"`
	unexported int
}

// stateFixture is what the state store's subtests share; they run in order, each on what the previous left.
type stateFixture struct {
	ctx   context.Context
	store replication.StateStore
	table string
	now   time.Time
	w     Watermark // the entity at group-a/watermark
	etag  replication.ETag
}

// RunStateStore checks a state store; table must be unused.
func RunStateStore(t *testing.T, store replication.StateStore, table string) {
	ctx := context.Background()
	if err := store.EnsureTable(ctx, table); err != nil {
		t.Fatal(err)
	}
	if err := store.EnsureTable(ctx, table); err != nil {
		t.Fatalf("EnsureTable is not idempotent: %v", err)
	}
	now := time.Now().UTC().Truncate(time.Microsecond)
	w := Watermark{Keys: replication.Keys{PartitionKey: "group-a", RowKey: "watermark"}, Sequence: 41, Bytes: 1 << 40,
		Applied: now, State: "Protected", Healthy: true, Ratio: 0.5, Snapshots: map[string]string{"vm1/disk0": "2026-01-01T00:00:00Z"},
		Recent: []int64{1, 2, 1 << 35}}
	f := &stateFixture{ctx: ctx, store: store, table: table, now: now, w: w}
	t.Run("InsertGetRoundTrip", f.insertGetRoundTrip)
	t.Run("ETagGuardsUpdates", f.etagGuardsUpdates)
	t.Run("UpsertQueryDelete", f.upsertQueryDelete)
	t.Run("ConcurrentMutateLosesNothing", f.concurrentMutateLosesNothing)
	t.Run("RejectsBadEntities", f.rejectsBadEntities)
	t.Run("TransactIsAllOrNothing", f.transactIsAllOrNothing)
}

func (f *stateFixture) insertGetRoundTrip(t *testing.T) {
	var err error
	if f.etag, err = f.store.Insert(f.ctx, f.table, f.w); err != nil || f.etag == "" {
		t.Fatalf("insert: etag %q, %v", f.etag, err)
	}
	if _, err := f.store.Insert(f.ctx, f.table, f.w); !errors.Is(err, replication.ErrConflict) {
		t.Fatalf("inserting twice: err = %v, want ErrConflict", err)
	}
	var got Watermark
	getTag, err := f.store.Get(f.ctx, f.table, "group-a", "watermark", &got)
	if err != nil || getTag != f.etag {
		t.Fatalf("get: etag %q (insert gave %q), %v", getTag, f.etag, err)
	}
	if got.Sequence != 41 || got.Bytes != 1<<40 || !got.Applied.Equal(f.now) || got.State != "Protected" || !got.Healthy ||
		got.Ratio != 0.5 || got.Snapshots["vm1/disk0"] != "2026-01-01T00:00:00Z" || len(got.Recent) != 3 || got.Recent[2] != 1<<35 ||
		got.Optional != nil || got.PartitionKey != "group-a" || got.RowKey != "watermark" {
		t.Fatalf("round trip changed the entity: %+v", got)
	}
}

func (f *stateFixture) etagGuardsUpdates(t *testing.T) {
	f.w.Sequence = 42
	newTag, err := f.store.Update(f.ctx, f.table, f.w, f.etag)
	if err != nil || newTag == f.etag {
		t.Fatalf("update with the current etag: %q, %v", newTag, err)
	}
	f.w.Sequence = 43
	if _, err := f.store.Update(f.ctx, f.table, f.w, f.etag); !errors.Is(err, replication.ErrConflict) {
		t.Fatalf("update with a stale etag: err = %v, want ErrConflict", err)
	}
	var got Watermark
	f.store.Get(f.ctx, f.table, "group-a", "watermark", &got)
	if got.Sequence != 42 {
		t.Fatalf("a refused update changed the entity: sequence %d", got.Sequence)
	}
	if err := f.store.Delete(f.ctx, f.table, "group-a", "watermark", f.etag); !errors.Is(err, replication.ErrConflict) {
		t.Fatalf("delete with a stale etag: err = %v, want ErrConflict", err)
	}
	f.etag = newTag
}

func (f *stateFixture) upsertQueryDelete(t *testing.T) {
	for _, rk := range []string{"b", "a", "c"} {
		if _, err := f.store.Upsert(f.ctx, f.table, Watermark{Keys: replication.Keys{PartitionKey: "group-b", RowKey: rk}, State: rk}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := f.store.Upsert(f.ctx, f.table, Watermark{Keys: replication.Keys{PartitionKey: "group-b", RowKey: "a"}, State: "a2"}); err != nil {
		t.Fatal(err)
	}
	items, etags, err := replication.QueryAll[Watermark](f.ctx, f.store, f.table, "group-b")
	if err != nil || len(items) != 3 || len(etags) != 3 {
		t.Fatalf("query: %d items, %v", len(items), err)
	}
	if items[0].RowKey != "a" || items[0].State != "a2" || items[1].RowKey != "b" || items[2].RowKey != "c" || etags[0] == "" {
		t.Fatalf("query order or content wrong: %+v", items)
	}
	var across []string
	if err := f.store.ListRows(f.ctx, f.table, "watermark", func(decode func(any) error, _ replication.ETag) error {
		var w Watermark
		if err := decode(&w); err != nil {
			return err
		}
		across = append(across, w.PartitionKey)
		return nil
	}); err != nil || len(across) != 1 || across[0] != "group-a" {
		t.Fatalf("ListRows(watermark) = %v, %v; want [group-a]", across, err)
	}
	if err := f.store.Delete(f.ctx, f.table, "group-b", "a", etags[0]); err != nil {
		t.Fatal(err)
	}
	var gone Watermark
	if _, err := f.store.Get(f.ctx, f.table, "group-b", "a", &gone); !errors.Is(err, replication.ErrNotFound) {
		t.Fatalf("get after delete: err = %v, want ErrNotFound", err)
	}
	if err := f.store.Delete(f.ctx, f.table, "group-b", "a", ""); !errors.Is(err, replication.ErrNotFound) {
		t.Fatalf("delete of a missing entity: err = %v, want ErrNotFound", err)
	}
}

func (f *stateFixture) concurrentMutateLosesNothing(t *testing.T) {
	const writers, each = 4, 10
	var wg sync.WaitGroup
	errs := make(chan error, writers*each)
	for w := 0; w < writers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < each; i++ {
				_, err := replication.Mutate(f.ctx, f.store, f.table, "group-c", "counter", func(e *Watermark, found bool) error {
					if !found {
						e.Keys = replication.Keys{PartitionKey: "group-c", RowKey: "counter"}
					}
					e.Sequence++
					return nil
				})
				errs <- err
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	var got Watermark
	if _, err := f.store.Get(f.ctx, f.table, "group-c", "counter", &got); err != nil || got.Sequence != writers*each {
		t.Fatalf("counter = %d, %v; want %d (an ETag-guarded update was lost)", got.Sequence, err, writers*each)
	}
}

func (f *stateFixture) rejectsBadEntities(t *testing.T) {
	if _, err := f.store.Insert(f.ctx, f.table, struct{ Name string }{"x"}); !errors.Is(err, replication.ErrInvalid) {
		t.Fatalf("entity without keys: err = %v, want ErrInvalid", err)
	}
	bad := Watermark{Keys: replication.Keys{PartitionKey: "a/b", RowKey: "x"}}
	if _, err := f.store.Insert(f.ctx, f.table, bad); !errors.Is(err, replication.ErrInvalid) {
		t.Fatalf("key with '/': err = %v, want ErrInvalid", err)
	}
}

// transactIsAllOrNothing: a transaction writes all its entities, or — when one precondition fails — none,
// naming the failure; it refuses more than one partition, an entity twice, or too many writes.
func (f *stateFixture) transactIsAllOrNothing(t *testing.T) {
	ctx, store, table := f.ctx, f.store, f.table
	row := func(rk string, seq int64) Watermark {
		return Watermark{Keys: replication.Keys{PartitionKey: "group-t", RowKey: rk}, Sequence: seq, Applied: f.now}
	}
	read := func(rk string) (Watermark, replication.ETag, error) {
		var w Watermark
		etag, err := store.Get(ctx, table, "group-t", rk, &w)
		return w, etag, err
	}
	if err := store.Transact(ctx, table, []replication.TxOp{{Kind: replication.TxInsert, Entity: row("a", 1)}, {Kind: replication.TxInsert, Entity: row("b", 1)}}); err != nil {
		t.Fatalf("two inserts: %v", err)
	}
	_, etagA, err := read("a")
	if err != nil {
		t.Fatal(err)
	}
	_, etagB, _ := read("b")
	// An insert of a key that exists fails the whole: the update beside it is not written.
	err = store.Transact(ctx, table, []replication.TxOp{{Kind: replication.TxUpdate, Entity: row("a", 2), IfMatch: etagA}, {Kind: replication.TxInsert, Entity: row("b", 2)}})
	if !errors.Is(err, replication.ErrConflict) {
		t.Errorf("an insert of an existing key: %v, want ErrConflict", err)
	}
	if w, etag, _ := read("a"); w.Sequence != 1 || etag != etagA {
		t.Errorf("a failed transaction wrote a: %+v", w)
	}
	// A changed ETag fails the whole: the upsert beside it is not written.
	err = store.Transact(ctx, table, []replication.TxOp{{Kind: replication.TxUpdate, Entity: row("a", 3), IfMatch: etagB}, {Kind: replication.TxUpsert, Entity: row("c", 3)}})
	if !errors.Is(err, replication.ErrConflict) {
		t.Errorf("an update with another's ETag: %v, want ErrConflict", err)
	}
	if _, _, err := read("c"); !errors.Is(err, replication.ErrNotFound) {
		t.Errorf("a failed transaction wrote c: %v", err)
	}
	// Every precondition holds: every write is made.
	err = store.Transact(ctx, table, []replication.TxOp{{Kind: replication.TxUpdate, Entity: row("a", 4), IfMatch: etagA},
		{Kind: replication.TxDelete, Keys: replication.Keys{PartitionKey: "group-t", RowKey: "b"}, IfMatch: etagB}, {Kind: replication.TxUpsert, Entity: row("c", 4)}})
	if err != nil {
		t.Fatalf("a transaction whose preconditions hold: %v", err)
	}
	if w, etag, _ := read("a"); w.Sequence != 4 || etag == etagA {
		t.Errorf("a after the transaction: %+v (etag %s)", w, etag)
	}
	if _, _, err := read("b"); !errors.Is(err, replication.ErrNotFound) {
		t.Errorf("b after its delete: %v", err)
	}
	if w, _, _ := read("c"); w.Sequence != 4 {
		t.Errorf("c after its upsert: %+v", w)
	}
	if err := store.Transact(ctx, table, []replication.TxOp{{Kind: replication.TxDelete, Keys: replication.Keys{PartitionKey: "group-t", RowKey: "b"}}}); !errors.Is(err, replication.ErrNotFound) {
		t.Errorf("a delete of a missing entity: %v, want ErrNotFound", err)
	}
	other := row("x", 1)
	other.PartitionKey = "group-u"
	many := make([]replication.TxOp, replication.MaxTxOps+1)
	for i := range many {
		many[i] = replication.TxOp{Kind: replication.TxUpsert, Entity: row(fmt.Sprint("m", i), 1)}
	}
	for name, ops := range map[string][]replication.TxOp{
		"two partitions":  {{Kind: replication.TxUpsert, Entity: row("x", 1)}, {Kind: replication.TxUpsert, Entity: other}},
		"an entity twice": {{Kind: replication.TxUpsert, Entity: row("x", 1)}, {Kind: replication.TxUpsert, Entity: row("x", 2)}},
		"too many writes": many,
		"no write":        nil,
	} {
		if err := store.Transact(ctx, table, ops); !errors.Is(err, replication.ErrInvalid) {
			t.Errorf("%s: %v, want ErrInvalid", name, err)
		}
	}
	if _, _, err := read("x"); !errors.Is(err, replication.ErrNotFound) {
		t.Errorf("a refused transaction wrote x: %v", err)
	}
}
