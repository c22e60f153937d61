package memstore

import (
	"bytes"
	"context"
	"fmt"
	"hash/fnv"
	"maps"
	"sync"
	"time"

	"github.com/standby-dr/standby/shared/replication"
)

// MaxEventBytes is Event Hubs' cap on one event (Standard tier): 1 MB, body and properties.
const MaxEventBytes = 1 << 20

// Event is an event of a hub as a consumer reads it.
type Event struct {
	Partition      int
	SequenceNumber int64
	EnqueuedTime   time.Time
	PartitionKey   string
	Body           []byte
	Properties     map[string]string
}

// Hub is an in-memory event hub, a replication.ChangePublisher: a partition key hashes to one of its
// partitions, whose events keep their order and number from 0; consumer groups keep checkpoints. It
// retains every event.
type Hub struct {
	changes     notifier
	mu          sync.Mutex
	partitions  [][]Event // a partition's event i has sequence number i
	spread      int       // the partition the next event without a key goes to
	checkpoints map[checkpointKey]int64
}

type checkpointKey struct {
	group     string
	partition int
}

// NewHub returns an empty hub of n partitions (at least one).
func NewHub(n int) *Hub {
	return &Hub{partitions: make([][]Event, max(n, 1)), checkpoints: map[checkpointKey]int64{}}
}

// partitionFor maps a key to a partition with FNV-1a, as the embedded broker does; events without a key
// go round the partitions.
func (h *Hub) partitionFor(key string) int {
	if key == "" {
		h.spread = (h.spread + 1) % len(h.partitions)
		return h.spread
	}
	f := fnv.New32a()
	f.Write([]byte(key))
	return int(f.Sum32() % uint32(len(h.partitions)))
}

func eventSize(e replication.ChangeEvent) int {
	n := len(e.Body)
	for k, v := range e.Properties {
		n += len(k) + len(v)
	}
	return n
}

// Publish appends the events, in order, to the partition the key hashes to. An event over MaxEventBytes
// fails the call with ErrTooLarge before anything is stored.
func (h *Hub) Publish(ctx context.Context, partitionKey string, events []replication.ChangeEvent) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	for i, e := range events {
		if size := eventSize(e); size > MaxEventBytes {
			return fmt.Errorf("event %d of %d bytes exceeds the %d-byte event limit: %w", i, size, MaxEventBytes, replication.ErrTooLarge)
		}
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	p, now := h.partitionFor(partitionKey), time.Now().UTC()
	for _, e := range events {
		h.partitions[p] = append(h.partitions[p], Event{Partition: p, SequenceNumber: int64(len(h.partitions[p])), EnqueuedTime: now,
			PartitionKey: partitionKey, Body: bytes.Clone(e.Body), Properties: maps.Clone(e.Properties)})
	}
	h.changes.notify()
	return nil
}

// Close does nothing: the hub stays readable.
func (h *Hub) Close(context.Context) error { return nil }

// PartitionCount is the number of partitions.
func (h *Hub) PartitionCount() int { return len(h.partitions) }

// LastSequence is the sequence number of the partition's newest event (-1 when it has none).
func (h *Hub) LastSequence(partition int) int64 {
	h.mu.Lock()
	defer h.mu.Unlock()
	return int64(len(h.partitions[partition])) - 1
}

// Read returns up to limit events of the partition with sequence numbers above afterSeq (-1 reads from
// the first), waiting up to wait for the first of them. The events' bodies are the hub's: read only.
func (h *Hub) Read(ctx context.Context, partition int, afterSeq int64, limit int, wait time.Duration) ([]Event, error) {
	if partition < 0 || partition >= len(h.partitions) {
		return nil, fmt.Errorf("partition %d of %d: %w", partition, len(h.partitions), replication.ErrInvalid)
	}
	return await(ctx, wait, &h.changes, func() ([]Event, error) {
		h.mu.Lock()
		defer h.mu.Unlock()
		events := h.partitions[partition]
		from := min(max(afterSeq+1, 0), int64(len(events)))
		to := min(from+int64(limit), int64(len(events)))
		return append([]Event(nil), events[from:to]...), nil
	})
}

// Checkpoint records a consumer group's position in a partition: the last event it has processed.
func (h *Hub) Checkpoint(consumerGroup string, partition int, seq int64) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.checkpoints[checkpointKey{consumerGroup, partition}] = seq
}

// LoadCheckpoint returns the consumer group's last checkpoint in the partition; ok=false (and -1) when
// there is none.
func (h *Hub) LoadCheckpoint(consumerGroup string, partition int) (seq int64, ok bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	seq, ok = h.checkpoints[checkpointKey{consumerGroup, partition}]
	if !ok {
		return -1, false
	}
	return seq, true
}

// notifier wakes those waiting for a change.
type notifier struct {
	mu sync.Mutex
	ch chan struct{}
}

// changed is closed at the next notify.
func (n *notifier) changed() <-chan struct{} {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.ch == nil {
		n.ch = make(chan struct{})
	}
	return n.ch
}

func (n *notifier) notify() {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.ch != nil {
		close(n.ch)
		n.ch = nil
	}
}

// await calls try until it finds something or fails, or wait has passed: again at every change and at
// least every 10 ms (the time alone makes scheduled messages due and locks expire).
func await[T any](ctx context.Context, wait time.Duration, changes *notifier, try func() ([]T, error)) ([]T, error) {
	deadline := time.Now().Add(wait)
	for {
		changed := changes.changed()
		items, err := try()
		left := time.Until(deadline)
		if err != nil || len(items) > 0 || left <= 0 {
			return items, err
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-changed:
		case <-time.After(min(left, 10*time.Millisecond)):
		}
	}
}
