package memstore

import (
	"context"
	"fmt"
	"sort"
	"sync"
	"time"

	"github.com/standby-dr/standby/shared/replication"
)

// Journal is an in-memory journal store.
type Journal struct {
	mu          sync.Mutex
	batches     map[string]map[int64][]byte
	stored      map[string]map[int64]time.Time
	Quarantined map[string][]byte // "group/seq" → payload
	Now         func() time.Time
}

// NewJournal returns an empty journal.
func NewJournal() *Journal {
	return &Journal{batches: map[string]map[int64][]byte{}, stored: map[string]map[int64]time.Time{}, Quarantined: map[string][]byte{},
		Now: time.Now}
}

func (j *Journal) Put(_ context.Context, group string, seq int64, payload []byte) error {
	j.mu.Lock()
	defer j.mu.Unlock()
	if j.batches[group] == nil {
		j.batches[group] = map[int64][]byte{}
		j.stored[group] = map[int64]time.Time{}
	}
	if stored, ok := j.batches[group][seq]; ok {
		return replication.SameBatchOrConflict(group, seq, stored, payload)
	}
	j.batches[group][seq] = append([]byte(nil), payload...)
	j.stored[group][seq] = j.Now()
	return nil
}

// Replace overwrites a stored batch.
func (j *Journal) Replace(_ context.Context, group string, seq int64, payload []byte) error {
	j.Overwrite(group, seq, payload)
	return nil
}

// Overwrite replaces a stored batch without Put's condition: what a holder of the journal's write
// permission can do on the storage service itself (the tests' attacker).
func (j *Journal) Overwrite(group string, seq int64, payload []byte) {
	j.mu.Lock()
	defer j.mu.Unlock()
	if j.batches[group] == nil {
		j.batches[group] = map[int64][]byte{}
		j.stored[group] = map[int64]time.Time{}
	}
	j.batches[group][seq] = append([]byte(nil), payload...)
	j.stored[group][seq] = j.Now()
}

func (j *Journal) Get(_ context.Context, group string, seq int64) ([]byte, error) {
	j.mu.Lock()
	defer j.mu.Unlock()
	p, ok := j.batches[group][seq]
	if !ok {
		return nil, fmt.Errorf("batch %d of %s: %w", seq, group, replication.ErrNotFound)
	}
	if len(p) > replication.MaxPayloadBytes {
		return nil, fmt.Errorf("%w: batch %d of %s has %d bytes, more than any agent stores", replication.ErrCorrupt, seq, group, len(p))
	}
	return append([]byte(nil), p...), nil
}

func (j *Journal) Delete(_ context.Context, group string, seq int64) error {
	j.mu.Lock()
	defer j.mu.Unlock()
	delete(j.batches[group], seq)
	return nil
}

func (j *Journal) List(_ context.Context, group string) ([]int64, error) {
	j.mu.Lock()
	defer j.mu.Unlock()
	var out []int64
	for seq := range j.batches[group] {
		out = append(out, seq)
	}
	sort.Slice(out, func(a, b int) bool { return out[a] < out[b] })
	return out, nil
}

func (j *Journal) Prune(_ context.Context, group string, through int64, olderThan time.Time) (int, error) {
	j.mu.Lock()
	defer j.mu.Unlock()
	n := 0
	for seq := range j.batches[group] {
		if seq <= through && j.stored[group][seq].Before(olderThan) {
			delete(j.batches[group], seq)
			n++
		}
	}
	return n, nil
}

func (j *Journal) Quarantine(_ context.Context, group string, seq int64, payload []byte, reason string) error {
	j.mu.Lock()
	defer j.mu.Unlock()
	j.Quarantined[fmt.Sprintf("%s/%d", group, seq)] = append([]byte(nil), payload...)
	return nil
}
