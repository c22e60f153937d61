package storetest

import (
	"bytes"
	"context"
	"errors"
	"testing"
	"time"

	"github.com/standby-dr/standby/shared/replication"
)

// RunJournalStore checks a journal store; group must be unused.
func RunJournalStore(t *testing.T, store replication.JournalStore, group string) {
	ctx := context.Background()
	payloads := map[int64][]byte{}
	for _, seq := range []int64{3, 1, 2, 10} {
		payloads[seq] = randomBytes(1000 + int(seq))
		if err := store.Put(ctx, group, seq, payloads[seq]); err != nil {
			t.Fatal(err)
		}
	}
	if err := store.Put(ctx, group, 3, payloads[3]); err != nil {
		t.Fatalf("putting the same batch again: %v", err)
	}
	if err := store.Put(ctx, group, 3, randomBytes(1003)); !errors.Is(err, replication.ErrConflict) {
		t.Fatalf("putting other content at a stored sequence: %v, want ErrConflict", err)
	}
	for seq, want := range payloads {
		got, err := store.Get(ctx, group, seq)
		if err != nil || !bytes.Equal(got, want) {
			t.Fatalf("batch %d differs (err %v)", seq, err)
		}
	}
	seqs, err := store.List(ctx, group)
	if err != nil || len(seqs) != 4 || seqs[0] != 1 || seqs[1] != 2 || seqs[2] != 3 || seqs[3] != 10 {
		t.Fatalf("list = %v, %v; want [1 2 3 10]", seqs, err)
	}
	if err := store.Delete(ctx, group, 2); err != nil {
		t.Fatal(err)
	}
	if err := store.Delete(ctx, group, 2); err != nil {
		t.Fatalf("deleting twice: %v", err)
	}
	if _, err := store.Get(ctx, group, 2); !errors.Is(err, replication.ErrNotFound) {
		t.Fatalf("get of a deleted batch: err = %v, want ErrNotFound", err)
	}
	if seqs, _ := store.List(ctx, group+"-other"); len(seqs) != 0 {
		t.Fatalf("another group lists %v", seqs)
	}
	// Pruning: nothing is younger than an hour ago; everything through 3 is older than an hour ahead.
	if n, err := store.Prune(ctx, group, 10, time.Now().Add(-time.Hour)); err != nil || n != 0 {
		t.Fatalf("pruning what is younger than the window: %d, %v", n, err)
	}
	if n, err := store.Prune(ctx, group, 3, time.Now().Add(time.Hour)); err != nil || n != 2 {
		t.Fatalf("pruning through 3: %d, %v; want 2 (1 and 3)", n, err)
	}
	if seqs, _ := store.List(ctx, group); len(seqs) != 1 || seqs[0] != 10 {
		t.Fatalf("after pruning: %v, want [10]", seqs)
	}
}
