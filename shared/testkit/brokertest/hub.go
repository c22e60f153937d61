package brokertest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/standby-dr/standby/shared/replication"
)

// HubEvent is an event as the suite reads it back.
type HubEvent struct {
	SequenceNumber int64
	Offset         string
	Body           []byte
	PartitionKey   string
	Properties     map[string]string
}

// Hub is what the suite needs of an event hub.
type Hub interface {
	Publisher() replication.ChangePublisher
	PartitionCount(ctx context.Context) (int, error)
	// LastSequence is the sequence number of the partition's newest event (-1 when empty).
	LastSequence(ctx context.Context, partition int) (int64, error)
	// Read returns up to max events of a partition after afterSeq, waiting up to wait for the first.
	Read(ctx context.Context, partition int, afterSeq int64, max int, wait time.Duration) ([]HubEvent, error)
	Checkpoint(ctx context.Context, consumerGroup string, partition int, e HubEvent) error
	LoadCheckpoint(ctx context.Context, consumerGroup string, partition int) (int64, bool, error)
}

// hubSuite is what the hub contract's subtests share.
type hubSuite struct {
	ctx context.Context
	hub Hub
}

// RunHub runs the hub contract.
func RunHub(t *testing.T, hub Hub) {
	f := &hubSuite{ctx: context.Background(), hub: hub}
	t.Run("OrderWithinPartitionKey", f.orderWithinPartitionKey)
	t.Run("CheckpointResume", f.checkpointResume)
	t.Run("EventOverOneMBRefused", f.eventOverOneMBRefused)
	t.Run("ManyEventsSplitUnderCap", f.manyEventsSplitUnderCap)
}

func (f *hubSuite) orderWithinPartitionKey(t *testing.T) {
	key := runID()
	before := lastSequences(t, f.hub)
	for i := 0; i < 20; i++ {
		ev := replication.ChangeEvent{Body: []byte(fmt.Sprintf("%s-%02d", key, i)), Properties: map[string]string{"run": key}}
		if err := f.hub.Publisher().Publish(f.ctx, key, []replication.ChangeEvent{ev}); err != nil {
			t.Fatalf("publish %d: %v", i, err)
		}
	}
	partition, events := findRun(t, f.hub, before, key, 20)
	var lastSeq int64 = -1
	for i, e := range events {
		if want := fmt.Sprintf("%s-%02d", key, i); string(e.Body) != want {
			t.Fatalf("event %d in partition %d is %q, want %q", i, partition, e.Body, want)
		}
		if e.SequenceNumber <= lastSeq {
			t.Fatalf("sequence numbers not increasing: %d after %d", e.SequenceNumber, lastSeq)
		}
		if e.Properties["run"] != key {
			t.Fatalf("event %d lost its properties: %v", i, e.Properties)
		}
		lastSeq = e.SequenceNumber
	}
}

func (f *hubSuite) checkpointResume(t *testing.T) {
	key := runID()
	before := lastSequences(t, f.hub)
	var evs []replication.ChangeEvent
	for i := 0; i < 5; i++ {
		evs = append(evs, replication.ChangeEvent{Body: []byte(fmt.Sprintf("%s-%d", key, i)), Properties: map[string]string{"run": key}})
	}
	if err := f.hub.Publisher().Publish(f.ctx, key, evs); err != nil {
		t.Fatal(err)
	}
	partition, events := findRun(t, f.hub, before, key, 5)
	group := "contract-" + key
	if _, ok, err := f.hub.LoadCheckpoint(f.ctx, group, partition); err != nil || ok {
		t.Fatalf("new consumer group has a checkpoint (ok=%v, err=%v)", ok, err)
	}
	if err := f.hub.Checkpoint(f.ctx, group, partition, events[2]); err != nil {
		t.Fatal(err)
	}
	seq, ok, err := f.hub.LoadCheckpoint(f.ctx, group, partition)
	if err != nil || !ok || seq != events[2].SequenceNumber {
		t.Fatalf("checkpoint = %d, %v, %v; want %d", seq, ok, err, events[2].SequenceNumber)
	}
	resumed, err := f.hub.Read(f.ctx, partition, seq, 100, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	resumed = onlyRun(resumed, key)
	if len(resumed) != 2 || !bytes.Equal(resumed[0].Body, events[3].Body) || !bytes.Equal(resumed[1].Body, events[4].Body) {
		t.Fatalf("resumed after checkpoint got %d events of the run, want events 3 and 4", len(resumed))
	}
}

func (f *hubSuite) eventOverOneMBRefused(t *testing.T) {
	big := replication.ChangeEvent{Body: bytes.Repeat([]byte{'x'}, 1<<20+1)}
	err := f.hub.Publisher().Publish(f.ctx, runID(), []replication.ChangeEvent{big})
	if !errors.Is(err, replication.ErrTooLarge) {
		t.Fatalf("publishing a 1 MiB+1 event: err = %v, want ErrTooLarge", err)
	}
}

func (f *hubSuite) manyEventsSplitUnderCap(t *testing.T) {
	key := runID()
	before := lastSequences(t, f.hub)
	var evs []replication.ChangeEvent
	for i := 0; i < 5; i++ { // 5 × 300 KB: more than one send's worth
		body := append([]byte(fmt.Sprintf("%s-%d-", key, i)), bytes.Repeat([]byte{'y'}, 300_000)...)
		evs = append(evs, replication.ChangeEvent{Body: body, Properties: map[string]string{"run": key}})
	}
	if err := f.hub.Publisher().Publish(f.ctx, key, evs); err != nil {
		t.Fatalf("publishing 1.5 MB in one call: %v", err)
	}
	_, events := findRun(t, f.hub, before, key, 5)
	for i, e := range events {
		if !bytes.HasPrefix(e.Body, []byte(fmt.Sprintf("%s-%d-", key, i))) {
			t.Fatalf("event %d out of order", i)
		}
	}
}

func lastSequences(t *testing.T, hub Hub) []int64 {
	t.Helper()
	ctx := context.Background()
	n, err := hub.PartitionCount(ctx)
	if err != nil {
		t.Fatal(err)
	}
	out := make([]int64, n)
	for p := range out {
		if out[p], err = hub.LastSequence(ctx, p); err != nil {
			t.Fatal(err)
		}
	}
	return out
}

func onlyRun(events []HubEvent, run string) []HubEvent {
	var out []HubEvent
	for _, e := range events {
		if e.Properties["run"] == run {
			out = append(out, e)
		}
	}
	return out
}

// findRun reads every partition past before and returns the one partition holding the run's events.
func findRun(t *testing.T, hub Hub, before []int64, run string, want int) (int, []HubEvent) {
	t.Helper()
	ctx := context.Background()
	found, partition := []HubEvent(nil), -1
	for p, after := range before {
		var got []HubEvent
		for {
			events, err := hub.Read(ctx, p, after, 500, 500*time.Millisecond)
			if err != nil {
				t.Fatal(err)
			}
			if len(events) == 0 {
				break
			}
			got = append(got, onlyRun(events, run)...)
			after = events[len(events)-1].SequenceNumber
		}
		if len(got) > 0 {
			if partition >= 0 {
				t.Fatalf("events of one partition key landed in partitions %d and %d", partition, p)
			}
			partition, found = p, got
		}
	}
	if len(found) != want {
		t.Fatalf("found %d events of the run, want %d", len(found), want)
	}
	return partition, found
}
