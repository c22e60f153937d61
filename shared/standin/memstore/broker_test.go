package memstore

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/standby-dr/standby/shared/replication"
)

func TestQueueWithoutSessionsOnAClock(t *testing.T) {
	ctx := context.Background()
	now := time.Now()
	q := NewQueue(QueueOptions{LockDuration: time.Minute, MaxDeliveryCount: 2})
	q.SetClock(func() time.Time { return now })
	q.Send(ctx, replication.JobMessage{MessageID: "a", Body: []byte("a")})
	seq, _ := q.Schedule(ctx, replication.JobMessage{MessageID: "b", Body: []byte("b")}, now.Add(time.Hour))
	if _, err := q.AcceptSession(ctx, "s"); !errors.Is(err, replication.ErrInvalid) {
		t.Fatalf("accepting a session of a queue without sessions: %v", err)
	}
	if got := q.Pending(); len(got) != 2 || got[1].SequenceNumber != seq {
		t.Fatalf("pending %+v", got)
	}
	msgs, _ := q.Receive(ctx, 10, 0)
	if len(msgs) != 1 || string(msgs[0].Body) != "a" {
		t.Fatalf("received %+v, want only a (b is not due)", msgs)
	}
	now = now.Add(time.Hour) // a's lock expires; b is due
	if err := q.Complete(ctx, msgs[0]); !errors.Is(err, replication.ErrLockLost) {
		t.Fatalf("completing after the lock expired: %v", err)
	}
	msgs, _ = q.Receive(ctx, 10, 0)
	if len(msgs) != 2 || msgs[0].DeliveryCount != 2 || string(msgs[1].Body) != "b" {
		t.Fatalf("after an hour: %+v", msgs)
	}
	if err := q.CancelScheduled(ctx, seq); !errors.Is(err, replication.ErrNotFound) {
		t.Fatalf("cancelling a message that is due: %v", err)
	}
	q.Complete(ctx, msgs[1])
	now = now.Add(2 * time.Minute) // a's second lock expires: that was its last delivery
	if dead := q.DeadLetters(); len(dead) != 1 || dead[0].MessageID != "a" || dead[0].DeadLetterReason != ReasonMaxDelivery {
		t.Fatalf("dead letters %+v", dead)
	}
	if got := q.Pending(); len(got) != 0 {
		t.Fatalf("pending after all: %+v", got)
	}
}

func TestAcceptNextSessionSkipsHeldSessions(t *testing.T) {
	ctx := context.Background()
	q := NewQueue(QueueOptions{Sessions: true})
	if err := q.Send(ctx, replication.JobMessage{MessageID: "x"}); !errors.Is(err, replication.ErrInvalid) {
		t.Fatalf("a message without a session id: %v", err)
	}
	q.Send(ctx, replication.JobMessage{SessionID: "a"})
	q.Send(ctx, replication.JobMessage{SessionID: "b"})
	first, err := q.AcceptNextSession(ctx, 0)
	if err != nil || first.ID != "a" {
		t.Fatalf("first session %v, %v", first, err)
	}
	second, err := q.AcceptNextSession(ctx, 0)
	if err != nil || second.ID != "b" {
		t.Fatalf("second session %v, %v", second, err)
	}
	if _, err := q.AcceptNextSession(ctx, 50*time.Millisecond); !errors.Is(err, ErrNoSession) {
		t.Fatalf("a third session: %v", err)
	}
	first.Close(ctx)
	if again, err := q.AcceptNextSession(ctx, 0); err != nil || again.ID != "a" {
		t.Fatalf("after closing a: %v, %v", again, err)
	}
	if _, err := first.Receive(ctx, 1, 0); !errors.Is(err, replication.ErrLockLost) {
		t.Fatalf("receiving on a closed session: %v", err)
	}
}

func TestReceiveWakesOnSend(t *testing.T) {
	ctx := context.Background()
	q, h := NewQueue(QueueOptions{}), NewHub(2)
	go func() {
		time.Sleep(20 * time.Millisecond)
		q.Send(ctx, replication.JobMessage{Body: []byte("m")})
		h.Publish(ctx, "k", []replication.ChangeEvent{{Body: []byte("e")}})
	}()
	if msgs, err := q.Receive(ctx, 1, 5*time.Second); err != nil || len(msgs) != 1 {
		t.Fatalf("queue: %v, %v", msgs, err)
	}
	p := 0
	for ; p < h.PartitionCount() && h.LastSequence(p) < 0; p++ {
	}
	if events, err := h.Read(ctx, (p+1)%2, -1, 10, 50*time.Millisecond); err != nil || len(events) != 0 {
		t.Fatalf("the other partition: %v, %v", events, err)
	}
	if events, err := h.Read(ctx, p, -1, 10, 0); err != nil || len(events) != 1 || events[0].SequenceNumber != 0 {
		t.Fatalf("hub: %v, %v", events, err)
	}
}

func TestConcurrentSendersAndReceivers(t *testing.T) {
	ctx := context.Background()
	q, h := NewQueue(QueueOptions{}), NewHub(4)
	var wg sync.WaitGroup
	for w := range 8 {
		wg.Go(func() {
			for i := range 50 {
				q.Send(ctx, replication.JobMessage{MessageID: fmt.Sprint(w, i)})
				h.Publish(ctx, fmt.Sprint(w), []replication.ChangeEvent{{Body: []byte{byte(i)}}})
			}
		})
	}
	var mu sync.Mutex
	received := 0
	done := func(n int) bool {
		mu.Lock()
		defer mu.Unlock()
		received += n
		return received >= 400
	}
	deadline := time.Now().Add(10 * time.Second)
	for range 4 {
		wg.Go(func() {
			for !done(0) && time.Now().Before(deadline) {
				msgs, _ := q.Receive(ctx, 5, 100*time.Millisecond)
				for _, m := range msgs {
					q.Complete(ctx, m)
				}
				done(len(msgs))
			}
		})
	}
	wg.Wait()
	total := int64(0)
	for p := range h.PartitionCount() {
		total += h.LastSequence(p) + 1
	}
	if received != 400 || total != 400 || len(q.Pending()) != 0 {
		t.Fatalf("received %d messages, hub holds %d events, %d pending; want 400, 400, 0", received, total, len(q.Pending()))
	}
}
