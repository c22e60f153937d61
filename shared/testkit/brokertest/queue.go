package brokertest

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/standby-dr/standby/shared/replication"
)

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

// queueSuite is what the queue contract's subtests share.
type queueSuite struct {
	ctx context.Context
	q   Queue
}

// RunQueue runs the queue contract.
func RunQueue(t *testing.T, q Queue) {
	f := &queueSuite{ctx: context.Background(), q: q}
	t.Run("FIFOWithinSession", f.fifoWithinSession)
	t.Run("SessionIsExclusive", f.sessionIsExclusive)
	t.Run("AbandonRedeliversThenDeadLetters", f.abandonRedeliversThenDeadLetters)
	t.Run("ExplicitDeadLetterKeepsReason", f.explicitDeadLetterKeepsReason)
	t.Run("LockExpiryRedelivers", f.lockExpiryRedelivers)
	t.Run("ScheduledInvisibleUntilDue", f.scheduledInvisibleUntilDue)
	t.Run("DuplicateDetection", f.duplicateDetection)
	t.Run("OtherSessionsProceed", f.otherSessionsProceed)
}

func (f *queueSuite) send(t *testing.T, session, id, body string) {
	t.Helper()
	if err := f.q.Sender().Send(f.ctx, replication.JobMessage{MessageID: id, SessionID: session, Body: []byte(body)}); err != nil {
		t.Fatalf("send %s: %v", id, err)
	}
}

func (f *queueSuite) receiveOne(t *testing.T, s Session, wait time.Duration) (QueueMessage, bool) {
	t.Helper()
	msgs, err := s.Receive(f.ctx, 1, wait)
	if err != nil {
		t.Fatalf("receive: %v", err)
	}
	if len(msgs) == 0 {
		return QueueMessage{}, false
	}
	return msgs[0], true
}

// accept takes the session, failing the subtest when it cannot.
func (f *queueSuite) accept(t *testing.T, session string) Session {
	t.Helper()
	s, err := f.q.AcceptSession(f.ctx, session)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// holding sends a new session one message, id <session>-<body>, and takes the session.
func (f *queueSuite) holding(t *testing.T, body string) (s Session, id string) {
	t.Helper()
	session := runID()
	id = session + "-" + body
	f.send(t, session, id, body)
	return f.accept(t, session), id
}

func (f *queueSuite) fifoWithinSession(t *testing.T) {
	session := runID()
	for i := 0; i < 5; i++ {
		f.send(t, session, fmt.Sprintf("%s-%d", session, i), fmt.Sprintf("step %d", i))
	}
	s := f.accept(t, session)
	defer s.Close(f.ctx)
	for i := 0; i < 5; i++ {
		m, ok := f.receiveOne(t, s, 5*time.Second)
		if !ok {
			t.Fatalf("message %d not received", i)
		}
		if want := fmt.Sprintf("step %d", i); string(m.Body) != want || m.DeliveryCount != 1 || m.SessionID != session {
			t.Fatalf("got %q (delivery %d, session %q), want %q (delivery 1)", m.Body, m.DeliveryCount, m.SessionID, want)
		}
		if err := s.Complete(f.ctx, m); err != nil {
			t.Fatal(err)
		}
	}
	if m, ok := f.receiveOne(t, s, 300*time.Millisecond); ok {
		t.Fatalf("completed session still delivers %q", m.Body)
	}
}

func (f *queueSuite) sessionIsExclusive(t *testing.T) {
	session := runID()
	f.send(t, session, session+"-a", "a")
	s := f.accept(t, session)
	defer s.Close(f.ctx)
	if other, err := f.q.AcceptSession(f.ctx, session); err == nil {
		other.Close(f.ctx)
		t.Fatal("a second receiver accepted a held session")
	} else if !errors.Is(err, replication.ErrLockLost) {
		t.Fatalf("second accept: err = %v, want ErrLockLost", err)
	}
	m, ok := f.receiveOne(t, s, 5*time.Second)
	if !ok {
		t.Fatal("holder received nothing")
	}
	if err := s.Complete(f.ctx, m); err != nil {
		t.Fatal(err)
	}
}

func (f *queueSuite) abandonRedeliversThenDeadLetters(t *testing.T) {
	s, id := f.holding(t, "poison")
	defer s.Close(f.ctx)
	for i := 1; i <= f.q.MaxDeliveryCount(); i++ {
		m, ok := f.receiveOne(t, s, 5*time.Second)
		if !ok {
			t.Fatalf("delivery %d did not come", i)
		}
		if m.DeliveryCount != i {
			t.Fatalf("delivery count = %d, want %d", m.DeliveryCount, i)
		}
		if err := s.Abandon(f.ctx, m); err != nil {
			t.Fatal(err)
		}
	}
	if m, ok := f.receiveOne(t, s, 500*time.Millisecond); ok {
		t.Fatalf("message delivered %d times, past MaxDeliveryCount %d", m.DeliveryCount, f.q.MaxDeliveryCount())
	}
	dl := findDeadLetter(t, f.q, id)
	if dl.DeadLetterReason != "MaxDeliveryCountExceeded" {
		t.Fatalf("dead-letter reason = %q", dl.DeadLetterReason)
	}
}

func (f *queueSuite) explicitDeadLetterKeepsReason(t *testing.T) {
	s, id := f.holding(t, "bad")
	defer s.Close(f.ctx)
	m, ok := f.receiveOne(t, s, 5*time.Second)
	if !ok {
		t.Fatal("nothing received")
	}
	if err := s.DeadLetter(f.ctx, m, "JobStepFailed", "step 3 failed"); err != nil {
		t.Fatal(err)
	}
	if dl := findDeadLetter(t, f.q, id); dl.DeadLetterReason != "JobStepFailed" {
		t.Fatalf("dead-letter reason = %q", dl.DeadLetterReason)
	}
}

func (f *queueSuite) lockExpiryRedelivers(t *testing.T) {
	session := runID()
	f.send(t, session, session+"-x", "x")
	s := f.accept(t, session)
	m, ok := f.receiveOne(t, s, 5*time.Second)
	if !ok {
		t.Fatal("nothing received")
	}
	// The receiver "dies": it neither settles the message nor closes the session.
	time.Sleep(f.q.LockDuration() + 700*time.Millisecond)
	if err := s.Complete(f.ctx, m); !errors.Is(err, replication.ErrLockLost) {
		t.Fatalf("completing after the lock expired: err = %v, want ErrLockLost", err)
	}
	s2, err := f.q.AcceptSession(f.ctx, session)
	if err != nil {
		t.Fatalf("session not released after lock expiry: %v", err)
	}
	defer s2.Close(f.ctx)
	m2, ok := f.receiveOne(t, s2, 5*time.Second)
	if !ok || string(m2.Body) != "x" || m2.DeliveryCount != 2 {
		t.Fatalf("redelivery: ok=%v body=%q delivery=%d, want x with delivery 2", ok, m2.Body, m2.DeliveryCount)
	}
	if err := s2.Complete(f.ctx, m2); err != nil {
		t.Fatal(err)
	}
}

func (f *queueSuite) scheduledInvisibleUntilDue(t *testing.T) {
	session := runID()
	due := time.Now().Add(2 * time.Second)
	if _, err := f.q.Sender().Schedule(f.ctx, replication.JobMessage{MessageID: session + "-s", SessionID: session, Body: []byte("later")}, due); err != nil {
		t.Fatal(err)
	}
	cancelled, err := f.q.Sender().Schedule(f.ctx, replication.JobMessage{MessageID: session + "-c", SessionID: session, Body: []byte("cancelled")}, time.Now().Add(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	if err := f.q.Sender().CancelScheduled(f.ctx, cancelled); err != nil {
		t.Fatalf("cancel scheduled: %v", err)
	}
	if err := f.q.Sender().CancelScheduled(f.ctx, cancelled); !errors.Is(err, replication.ErrNotFound) {
		t.Fatalf("cancelling twice: err = %v, want ErrNotFound", err)
	}
	s := f.accept(t, session)
	defer s.Close(f.ctx)
	if m, ok := f.receiveOne(t, s, 500*time.Millisecond); ok {
		t.Fatalf("scheduled message %q visible before it is due", m.Body)
	}
	var m QueueMessage
	ok := false
	for i := 0; i < 20 && !ok; i++ {
		if err := s.RenewLock(f.ctx); err != nil {
			t.Fatalf("renewing the session lock: %v", err)
		}
		m, ok = f.receiveOne(t, s, 500*time.Millisecond)
	}
	if !ok || string(m.Body) != "later" {
		t.Fatalf("scheduled message not delivered when due (ok=%v body=%q)", ok, m.Body)
	}
	if time.Now().Before(due.Add(-200 * time.Millisecond)) {
		t.Fatal("scheduled message delivered early")
	}
	s.Complete(f.ctx, m)
	if m, ok := f.receiveOne(t, s, 300*time.Millisecond); ok {
		t.Fatalf("cancelled message delivered: %q", m.Body)
	}
}

func (f *queueSuite) duplicateDetection(t *testing.T) {
	if !f.q.DuplicateDetection() {
		t.Skip("queue has duplicate detection off")
	}
	session := runID()
	f.send(t, session, session+"-dup", "first")
	f.send(t, session, session+"-dup", "second")
	s := f.accept(t, session)
	defer s.Close(f.ctx)
	m, ok := f.receiveOne(t, s, 5*time.Second)
	if !ok || string(m.Body) != "first" {
		t.Fatalf("got ok=%v %q, want first", ok, m.Body)
	}
	s.Complete(f.ctx, m)
	if m, ok := f.receiveOne(t, s, 500*time.Millisecond); ok {
		t.Fatalf("duplicate delivered: %q", m.Body)
	}
}

func (f *queueSuite) otherSessionsProceed(t *testing.T) {
	a, b := runID()+"-a", runID()+"-b"
	f.send(t, a, a+"-1", "a1")
	f.send(t, b, b+"-1", "b1")
	sa := f.accept(t, a)
	defer sa.Close(f.ctx)
	sb, err := f.q.AcceptSession(f.ctx, b)
	if err != nil {
		t.Fatalf("a second session blocked while the first is held: %v", err)
	}
	defer sb.Close(f.ctx)
	for _, s := range []Session{sb, sa} {
		m, ok := f.receiveOne(t, s, 5*time.Second)
		if !ok || !strings.HasPrefix(string(m.Body), s.ID()[len(s.ID())-1:]) {
			t.Fatalf("session %s: ok=%v body=%q", s.ID(), ok, m.Body)
		}
		s.Complete(f.ctx, m)
	}
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
