// Package brokertest is the contract suite for the change stream (Event Hubs) and job queue (Service Bus)
// semantics Standby depends on. It runs against the embedded broker always, and against real Event Hubs
// and Service Bus namespaces when their connection settings are given, so behaviour proven locally is
// behaviour checked against Azure.
package brokertest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strings"
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

// QueueMessage is a received message; Handle is the implementation's own (lock token or SDK message).
type QueueMessage struct {
	MessageID        string
	SessionID        string
	Body             []byte
	DeliveryCount    int
	DeadLetterReason string
	Handle           any
}

// Queue is what the suite needs of a session-enabled queue.
type Queue interface {
	Sender() replication.JobSender
	AcceptSession(ctx context.Context, sessionID string) (Session, error)
	AcceptNextSession(ctx context.Context, wait time.Duration) (Session, error)
	// DeadLetters reads the dead-letter queue without removing (a peek).
	DeadLetters(ctx context.Context, max int) ([]QueueMessage, error)
	LockDuration() time.Duration
	MaxDeliveryCount() int
	DuplicateDetection() bool
}

// Session is a held session.
type Session interface {
	ID() string
	Receive(ctx context.Context, max int, wait time.Duration) ([]QueueMessage, error)
	Complete(ctx context.Context, m QueueMessage) error
	Abandon(ctx context.Context, m QueueMessage) error
	DeadLetter(ctx context.Context, m QueueMessage, reason, description string) error
	// RenewLock extends the session lock; a holder that waits longer than the lock duration must renew.
	RenewLock(ctx context.Context) error
	Close(ctx context.Context) error
}

func runID() string { return fmt.Sprintf("run%d", time.Now().UnixNano()) }

// RunHub runs the hub contract.
func RunHub(t *testing.T, hub Hub) {
	ctx := context.Background()
	t.Run("OrderWithinPartitionKey", func(t *testing.T) {
		key := runID()
		before := lastSequences(t, hub)
		for i := 0; i < 20; i++ {
			ev := replication.ChangeEvent{Body: []byte(fmt.Sprintf("%s-%02d", key, i)), Properties: map[string]string{"run": key}}
			if err := hub.Publisher().Publish(ctx, key, []replication.ChangeEvent{ev}); err != nil {
				t.Fatalf("publish %d: %v", i, err)
			}
		}
		partition, events := findRun(t, hub, before, key, 20)
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
	})
	t.Run("CheckpointResume", func(t *testing.T) {
		key := runID()
		before := lastSequences(t, hub)
		var evs []replication.ChangeEvent
		for i := 0; i < 5; i++ {
			evs = append(evs, replication.ChangeEvent{Body: []byte(fmt.Sprintf("%s-%d", key, i)), Properties: map[string]string{"run": key}})
		}
		if err := hub.Publisher().Publish(ctx, key, evs); err != nil {
			t.Fatal(err)
		}
		partition, events := findRun(t, hub, before, key, 5)
		group := "contract-" + key
		if _, ok, err := hub.LoadCheckpoint(ctx, group, partition); err != nil || ok {
			t.Fatalf("new consumer group has a checkpoint (ok=%v, err=%v)", ok, err)
		}
		if err := hub.Checkpoint(ctx, group, partition, events[2]); err != nil {
			t.Fatal(err)
		}
		seq, ok, err := hub.LoadCheckpoint(ctx, group, partition)
		if err != nil || !ok || seq != events[2].SequenceNumber {
			t.Fatalf("checkpoint = %d, %v, %v; want %d", seq, ok, err, events[2].SequenceNumber)
		}
		resumed, err := hub.Read(ctx, partition, seq, 100, 5*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		resumed = onlyRun(resumed, key)
		if len(resumed) != 2 || !bytes.Equal(resumed[0].Body, events[3].Body) || !bytes.Equal(resumed[1].Body, events[4].Body) {
			t.Fatalf("resumed after checkpoint got %d events of the run, want events 3 and 4", len(resumed))
		}
	})
	t.Run("EventOverOneMBRefused", func(t *testing.T) {
		big := replication.ChangeEvent{Body: bytes.Repeat([]byte{'x'}, 1<<20+1)}
		err := hub.Publisher().Publish(ctx, runID(), []replication.ChangeEvent{big})
		if !errors.Is(err, replication.ErrTooLarge) {
			t.Fatalf("publishing a 1 MiB+1 event: err = %v, want ErrTooLarge", err)
		}
	})
	t.Run("ManyEventsSplitUnderCap", func(t *testing.T) {
		key := runID()
		before := lastSequences(t, hub)
		var evs []replication.ChangeEvent
		for i := 0; i < 5; i++ { // 5 × 300 KB: more than one send's worth
			body := append([]byte(fmt.Sprintf("%s-%d-", key, i)), bytes.Repeat([]byte{'y'}, 300_000)...)
			evs = append(evs, replication.ChangeEvent{Body: body, Properties: map[string]string{"run": key}})
		}
		if err := hub.Publisher().Publish(ctx, key, evs); err != nil {
			t.Fatalf("publishing 1.5 MB in one call: %v", err)
		}
		_, events := findRun(t, hub, before, key, 5)
		for i, e := range events {
			if !bytes.HasPrefix(e.Body, []byte(fmt.Sprintf("%s-%d-", key, i))) {
				t.Fatalf("event %d out of order", i)
			}
		}
	})
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

// RunQueue runs the queue contract.
func RunQueue(t *testing.T, q Queue) {
	ctx := context.Background()
	send := func(t *testing.T, session, id, body string) {
		t.Helper()
		if err := q.Sender().Send(ctx, replication.JobMessage{MessageID: id, SessionID: session, Body: []byte(body)}); err != nil {
			t.Fatalf("send %s: %v", id, err)
		}
	}
	receiveOne := func(t *testing.T, s Session, wait time.Duration) (QueueMessage, bool) {
		t.Helper()
		msgs, err := s.Receive(ctx, 1, wait)
		if err != nil {
			t.Fatalf("receive: %v", err)
		}
		if len(msgs) == 0 {
			return QueueMessage{}, false
		}
		return msgs[0], true
	}
	t.Run("FIFOWithinSession", func(t *testing.T) {
		session := runID()
		for i := 0; i < 5; i++ {
			send(t, session, fmt.Sprintf("%s-%d", session, i), fmt.Sprintf("step %d", i))
		}
		s, err := q.AcceptSession(ctx, session)
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close(ctx)
		for i := 0; i < 5; i++ {
			m, ok := receiveOne(t, s, 5*time.Second)
			if !ok {
				t.Fatalf("message %d not received", i)
			}
			if want := fmt.Sprintf("step %d", i); string(m.Body) != want || m.DeliveryCount != 1 || m.SessionID != session {
				t.Fatalf("got %q (delivery %d, session %q), want %q (delivery 1)", m.Body, m.DeliveryCount, m.SessionID, want)
			}
			if err := s.Complete(ctx, m); err != nil {
				t.Fatal(err)
			}
		}
		if m, ok := receiveOne(t, s, 300*time.Millisecond); ok {
			t.Fatalf("completed session still delivers %q", m.Body)
		}
	})
	t.Run("SessionIsExclusive", func(t *testing.T) {
		session := runID()
		send(t, session, session+"-a", "a")
		s, err := q.AcceptSession(ctx, session)
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close(ctx)
		if other, err := q.AcceptSession(ctx, session); err == nil {
			other.Close(ctx)
			t.Fatal("a second receiver accepted a held session")
		} else if !errors.Is(err, replication.ErrLockLost) {
			t.Fatalf("second accept: err = %v, want ErrLockLost", err)
		}
		m, ok := receiveOne(t, s, 5*time.Second)
		if !ok {
			t.Fatal("holder received nothing")
		}
		if err := s.Complete(ctx, m); err != nil {
			t.Fatal(err)
		}
	})
	t.Run("AbandonRedeliversThenDeadLetters", func(t *testing.T) {
		session := runID()
		id := session + "-poison"
		send(t, session, id, "poison")
		s, err := q.AcceptSession(ctx, session)
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close(ctx)
		for i := 1; i <= q.MaxDeliveryCount(); i++ {
			m, ok := receiveOne(t, s, 5*time.Second)
			if !ok {
				t.Fatalf("delivery %d did not come", i)
			}
			if m.DeliveryCount != i {
				t.Fatalf("delivery count = %d, want %d", m.DeliveryCount, i)
			}
			if err := s.Abandon(ctx, m); err != nil {
				t.Fatal(err)
			}
		}
		if m, ok := receiveOne(t, s, 500*time.Millisecond); ok {
			t.Fatalf("message delivered %d times, past MaxDeliveryCount %d", m.DeliveryCount, q.MaxDeliveryCount())
		}
		dl := findDeadLetter(t, q, id)
		if dl.DeadLetterReason != "MaxDeliveryCountExceeded" {
			t.Fatalf("dead-letter reason = %q", dl.DeadLetterReason)
		}
	})
	t.Run("ExplicitDeadLetterKeepsReason", func(t *testing.T) {
		session := runID()
		id := session + "-bad"
		send(t, session, id, "bad")
		s, err := q.AcceptSession(ctx, session)
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close(ctx)
		m, ok := receiveOne(t, s, 5*time.Second)
		if !ok {
			t.Fatal("nothing received")
		}
		if err := s.DeadLetter(ctx, m, "JobStepFailed", "step 3 failed"); err != nil {
			t.Fatal(err)
		}
		if dl := findDeadLetter(t, q, id); dl.DeadLetterReason != "JobStepFailed" {
			t.Fatalf("dead-letter reason = %q", dl.DeadLetterReason)
		}
	})
	t.Run("LockExpiryRedelivers", func(t *testing.T) {
		session := runID()
		send(t, session, session+"-x", "x")
		s, err := q.AcceptSession(ctx, session)
		if err != nil {
			t.Fatal(err)
		}
		m, ok := receiveOne(t, s, 5*time.Second)
		if !ok {
			t.Fatal("nothing received")
		}
		// The receiver "dies": it neither settles the message nor closes the session.
		time.Sleep(q.LockDuration() + 700*time.Millisecond)
		if err := s.Complete(ctx, m); !errors.Is(err, replication.ErrLockLost) {
			t.Fatalf("completing after the lock expired: err = %v, want ErrLockLost", err)
		}
		s2, err := q.AcceptSession(ctx, session)
		if err != nil {
			t.Fatalf("session not released after lock expiry: %v", err)
		}
		defer s2.Close(ctx)
		m2, ok := receiveOne(t, s2, 5*time.Second)
		if !ok || string(m2.Body) != "x" || m2.DeliveryCount != 2 {
			t.Fatalf("redelivery: ok=%v body=%q delivery=%d, want x with delivery 2", ok, m2.Body, m2.DeliveryCount)
		}
		if err := s2.Complete(ctx, m2); err != nil {
			t.Fatal(err)
		}
	})
	t.Run("ScheduledInvisibleUntilDue", func(t *testing.T) {
		session := runID()
		due := time.Now().Add(2 * time.Second)
		if _, err := q.Sender().Schedule(ctx, replication.JobMessage{MessageID: session + "-s", SessionID: session, Body: []byte("later")}, due); err != nil {
			t.Fatal(err)
		}
		cancelled, err := q.Sender().Schedule(ctx, replication.JobMessage{MessageID: session + "-c", SessionID: session, Body: []byte("cancelled")}, time.Now().Add(time.Hour))
		if err != nil {
			t.Fatal(err)
		}
		if err := q.Sender().CancelScheduled(ctx, cancelled); err != nil {
			t.Fatalf("cancel scheduled: %v", err)
		}
		if err := q.Sender().CancelScheduled(ctx, cancelled); !errors.Is(err, replication.ErrNotFound) {
			t.Fatalf("cancelling twice: err = %v, want ErrNotFound", err)
		}
		s, err := q.AcceptSession(ctx, session)
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close(ctx)
		if m, ok := receiveOne(t, s, 500*time.Millisecond); ok {
			t.Fatalf("scheduled message %q visible before it is due", m.Body)
		}
		var m QueueMessage
		ok := false
		for i := 0; i < 20 && !ok; i++ {
			if err := s.RenewLock(ctx); err != nil {
				t.Fatalf("renewing the session lock: %v", err)
			}
			m, ok = receiveOne(t, s, 500*time.Millisecond)
		}
		if !ok || string(m.Body) != "later" {
			t.Fatalf("scheduled message not delivered when due (ok=%v body=%q)", ok, m.Body)
		}
		if time.Now().Before(due.Add(-200 * time.Millisecond)) {
			t.Fatal("scheduled message delivered early")
		}
		s.Complete(ctx, m)
		if m, ok := receiveOne(t, s, 300*time.Millisecond); ok {
			t.Fatalf("cancelled message delivered: %q", m.Body)
		}
	})
	t.Run("DuplicateDetection", func(t *testing.T) {
		if !q.DuplicateDetection() {
			t.Skip("queue has duplicate detection off")
		}
		session := runID()
		send(t, session, session+"-dup", "first")
		send(t, session, session+"-dup", "second")
		s, err := q.AcceptSession(ctx, session)
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close(ctx)
		m, ok := receiveOne(t, s, 5*time.Second)
		if !ok || string(m.Body) != "first" {
			t.Fatalf("got ok=%v %q, want first", ok, m.Body)
		}
		s.Complete(ctx, m)
		if m, ok := receiveOne(t, s, 500*time.Millisecond); ok {
			t.Fatalf("duplicate delivered: %q", m.Body)
		}
	})
	t.Run("OtherSessionsProceed", func(t *testing.T) {
		a, b := runID()+"-a", runID()+"-b"
		send(t, a, a+"-1", "a1")
		send(t, b, b+"-1", "b1")
		sa, err := q.AcceptSession(ctx, a)
		if err != nil {
			t.Fatal(err)
		}
		defer sa.Close(ctx)
		sb, err := q.AcceptSession(ctx, b)
		if err != nil {
			t.Fatalf("a second session blocked while the first is held: %v", err)
		}
		defer sb.Close(ctx)
		for _, s := range []Session{sb, sa} {
			m, ok := receiveOne(t, s, 5*time.Second)
			if !ok || !strings.HasPrefix(string(m.Body), s.ID()[len(s.ID())-1:]) {
				t.Fatalf("session %s: ok=%v body=%q", s.ID(), ok, m.Body)
			}
			s.Complete(ctx, m)
		}
	})
}

func findDeadLetter(t *testing.T, q Queue, id string) QueueMessage {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		dls, err := q.DeadLetters(context.Background(), 1000)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range dls {
			if m.MessageID == id {
				return m
			}
		}
		time.Sleep(200 * time.Millisecond)
	}
	t.Fatalf("message %s not in the dead-letter queue", id)
	return QueueMessage{}
}
