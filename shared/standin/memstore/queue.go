package memstore

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"sync"
	"time"

	"github.com/standby-dr/standby/shared/replication"
)

// Service Bus's words for the automatic dead-lettering, as the embedded broker uses them.
const (
	ReasonMaxDelivery      = "MaxDeliveryCountExceeded"
	maxDeliveryDescription = "Message could not be consumed after %d delivery attempts."
)

// ErrNoSession is returned by AcceptNextSession when no session has messages within the wait.
var ErrNoSession = errors.New("no session with available messages")

// QueueOptions configure a Queue.
type QueueOptions struct {
	// LockDuration is how long a peek-lock and a session lock last unless renewed: 60 s when zero.
	LockDuration time.Duration
	// MaxDeliveryCount is the delivery after which an abandoned or expired message is dead-lettered: 10
	// when zero.
	MaxDeliveryCount int
	// Sessions makes the queue session-enabled: a message needs a session id, and a receiver accepts a
	// session to receive its messages.
	Sessions bool
	// DuplicateDetection is the window within which a message id sent before is dropped: off when zero.
	DuplicateDetection time.Duration
}

// Message is a message as a receiver sees it under a peek-lock (LockToken), or as read from the
// dead-letter queue (DeadLetterReason set) or peeked (Pending).
type Message struct {
	replication.JobMessage
	SequenceNumber        int64
	DeliveryCount         int
	EnqueuedTime          time.Time
	LockToken             string
	DeadLetterReason      string
	DeadLetterDescription string
}

type queued struct {
	Message
	visibleAt   time.Time // when a scheduled message is due
	lockedUntil time.Time // with LockToken
}

func (e *queued) available(now time.Time) bool { return e.LockToken == "" && !e.visibleAt.After(now) }

// Queue is an in-memory job queue, a replication.JobSender with Service Bus's receive side: peek-lock,
// complete, abandon, lock expiry, delivery counts, dead-lettering after MaxDeliveryCount, scheduled
// messages and sessions (one receiver at a time holds a session's messages).
type Queue struct {
	opts     QueueOptions
	changes  notifier
	mu       sync.Mutex
	now      func() time.Time
	seq      int64     // the last message's sequence number
	tokens   int64     // the last lock token's number
	live     []*queued // visible, scheduled and locked messages, in sequence order
	dead     []Message // the dead-letter queue
	sessions map[string]sessionLock
	seen     map[string]time.Time // message id → when sent, for duplicate detection
}

type sessionLock struct {
	token string
	until time.Time
}

// NewQueue returns an empty queue.
func NewQueue(opts QueueOptions) *Queue {
	if opts.LockDuration == 0 {
		opts.LockDuration = 60 * time.Second
	}
	if opts.MaxDeliveryCount == 0 {
		opts.MaxDeliveryCount = 10
	}
	return &Queue{opts: opts, now: time.Now, sessions: map[string]sessionLock{}, seen: map[string]time.Time{}}
}

// SetClock replaces the queue's clock, which decides when scheduled messages are due and locks expire.
func (q *Queue) SetClock(now func() time.Time) {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.now = now
}

// Send enqueues the message, visible at once.
func (q *Queue) Send(ctx context.Context, msg replication.JobMessage) error {
	_, err := q.Schedule(ctx, msg, time.Time{})
	return err
}

// Schedule enqueues the message invisible until at and returns its sequence number for
// CancelScheduled. A message whose id was sent within the duplicate-detection window is dropped
// silently, as Service Bus does; its sequence number is then 0.
func (q *Queue) Schedule(_ context.Context, msg replication.JobMessage, at time.Time) (int64, error) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.opts.Sessions && msg.SessionID == "" {
		return 0, fmt.Errorf("the queue requires sessions and message %q has no session id: %w", msg.MessageID, replication.ErrInvalid)
	}
	now := q.now()
	if msg.MessageID != "" && q.opts.DuplicateDetection > 0 {
		if sent, ok := q.seen[msg.MessageID]; ok && now.Sub(sent) < q.opts.DuplicateDetection {
			return 0, nil
		}
		q.seen[msg.MessageID] = now
	}
	q.seq++
	msg.Body, msg.Properties = bytes.Clone(msg.Body), maps.Clone(msg.Properties)
	q.live = append(q.live, &queued{Message: Message{JobMessage: msg, SequenceNumber: q.seq, EnqueuedTime: now}, visibleAt: at})
	q.changes.notify()
	return q.seq, nil
}

// CancelScheduled withdraws a scheduled message that is not yet due; ErrNotFound otherwise.
func (q *Queue) CancelScheduled(_ context.Context, seq int64) error {
	q.mu.Lock()
	defer q.mu.Unlock()
	for _, e := range q.live {
		if e.SequenceNumber == seq && e.visibleAt.After(q.now()) {
			q.remove(e)
			return nil
		}
	}
	return fmt.Errorf("scheduled message %d: already enqueued or cancelled: %w", seq, replication.ErrNotFound)
}

// Close does nothing: the queue stays readable.
func (q *Queue) Close(context.Context) error { return nil }

func (q *Queue) remove(e *queued) {
	q.live = slices.DeleteFunc(q.live, func(x *queued) bool { return x == e })
}

func (q *Queue) deadLetter(e *queued, reason, description string) {
	q.remove(e)
	m := e.Message
	m.LockToken, m.DeadLetterReason, m.DeadLetterDescription = "", reason, description
	q.dead = append(q.dead, m)
}

// release unlocks a message for redelivery, or dead-letters it after its last delivery.
func (q *Queue) release(e *queued) {
	if e.DeliveryCount >= q.opts.MaxDeliveryCount {
		q.deadLetter(e, ReasonMaxDelivery, fmt.Sprintf(maxDeliveryDescription, q.opts.MaxDeliveryCount))
		return
	}
	e.LockToken = ""
}

// expire releases the message locks that ran out. q.mu is held.
func (q *Queue) expire(now time.Time) {
	var expired []*queued
	for _, e := range q.live {
		if e.LockToken != "" && e.lockedUntil.Before(now) {
			expired = append(expired, e)
		}
	}
	for _, e := range expired {
		q.release(e)
	}
}

func (q *Queue) newToken(kind string) string {
	q.tokens++
	return fmt.Sprintf("%s-%d", kind, q.tokens)
}

// lock peek-locks up to limit available messages, of the session unless it is "", in order. q.mu is
// held.
func (q *Queue) lock(limit int, session string) []Message {
	now := q.now()
	q.expire(now)
	var out []Message
	for _, e := range q.live {
		if len(out) == limit {
			break
		}
		if !e.available(now) || (session != "" && e.SessionID != session) {
			continue
		}
		e.LockToken, e.lockedUntil = q.newToken("lock"), now.Add(q.opts.LockDuration)
		e.DeliveryCount++
		out = append(out, e.Message)
	}
	return out
}

// Receive peek-locks up to limit messages of a queue without sessions, waiting up to wait for the first.
func (q *Queue) Receive(ctx context.Context, limit int, wait time.Duration) ([]Message, error) {
	if q.opts.Sessions {
		return nil, fmt.Errorf("the queue requires sessions: accept a session to receive: %w", replication.ErrInvalid)
	}
	return await(ctx, wait, &q.changes, func() ([]Message, error) {
		q.mu.Lock()
		defer q.mu.Unlock()
		return q.lock(limit, ""), nil
	})
}

// settle applies a settlement to the locked message m; ErrLockLost when its lock expired or it was
// settled.
func (q *Queue) settle(m Message, apply func(e *queued)) error {
	q.mu.Lock()
	defer q.mu.Unlock()
	for _, e := range q.live {
		if m.LockToken != "" && e.LockToken == m.LockToken && !e.lockedUntil.Before(q.now()) {
			apply(e)
			q.changes.notify()
			return nil
		}
	}
	return fmt.Errorf("the lock on message %d expired or the message was already settled: %w", m.SequenceNumber, replication.ErrLockLost)
}

// Complete removes a locked message: it has been processed.
func (q *Queue) Complete(_ context.Context, m Message) error { return q.settle(m, q.remove) }

// Abandon releases a locked message for redelivery, or dead-letters it when it has been delivered
// MaxDeliveryCount times.
func (q *Queue) Abandon(_ context.Context, m Message) error { return q.settle(m, q.release) }

// DeadLetter moves a locked message to the dead-letter queue with a reason and description.
func (q *Queue) DeadLetter(_ context.Context, m Message, reason, description string) error {
	return q.settle(m, func(e *queued) { q.deadLetter(e, reason, description) })
}

// DeadLetters reads the dead-letter queue, oldest first, without removing.
func (q *Queue) DeadLetters() []Message {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.expire(q.now())
	return slices.Clone(q.dead)
}

// Pending peeks at the messages the queue holds, in order: visible, locked and scheduled ones, not
// those completed or dead-lettered.
func (q *Queue) Pending() []Message {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.expire(q.now())
	out := make([]Message, len(q.live))
	for i, e := range q.live {
		out[i] = e.Message
	}
	return out
}

// Session is a held session of a session-enabled queue: only its holder receives the session's
// messages, in order, until it closes the session or its lock expires.
type Session struct {
	ID    string
	q     *Queue
	token string
}

func (q *Queue) requireSessions() error {
	if !q.opts.Sessions {
		return fmt.Errorf("the queue does not use sessions: %w", replication.ErrInvalid)
	}
	return nil
}

func (q *Queue) held(session string, now time.Time) bool {
	l, ok := q.sessions[session]
	return ok && !l.until.Before(now)
}

// hold locks a session for a new holder. q.mu is held.
func (q *Queue) hold(session string) *Session {
	s := &Session{ID: session, q: q, token: q.newToken("session")}
	q.sessions[session] = sessionLock{token: s.token, until: q.now().Add(q.opts.LockDuration)}
	return s
}

// AcceptSession locks a named session; ErrLockLost when another receiver holds it.
func (q *Queue) AcceptSession(_ context.Context, session string) (*Session, error) {
	if err := q.requireSessions(); err != nil {
		return nil, err
	}
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.held(session, q.now()) {
		return nil, fmt.Errorf("session %q is held by another receiver: %w", session, replication.ErrLockLost)
	}
	return q.hold(session), nil
}

// AcceptNextSession locks the session with the oldest available message among those nobody holds,
// waiting up to wait; ErrNoSession when none has messages.
func (q *Queue) AcceptNextSession(ctx context.Context, wait time.Duration) (*Session, error) {
	if err := q.requireSessions(); err != nil {
		return nil, err
	}
	found, err := await(ctx, wait, &q.changes, func() ([]*Session, error) {
		q.mu.Lock()
		defer q.mu.Unlock()
		now := q.now()
		q.expire(now)
		for _, e := range q.live {
			if e.available(now) && !q.held(e.SessionID, now) {
				return []*Session{q.hold(e.SessionID)}, nil
			}
		}
		return nil, nil
	})
	if err == nil && len(found) == 0 {
		err = ErrNoSession
	}
	if err != nil {
		return nil, err
	}
	return found[0], nil
}

// check fails with ErrLockLost unless s still holds its session. s.q.mu is held.
func (s *Session) check() error {
	if l := s.q.sessions[s.ID]; l.token != s.token || l.until.Before(s.q.now()) {
		return fmt.Errorf("session %q: the session lock expired or was taken: %w", s.ID, replication.ErrLockLost)
	}
	return nil
}

// Receive peek-locks up to limit messages of the session, in order, waiting up to wait for the first.
func (s *Session) Receive(ctx context.Context, limit int, wait time.Duration) ([]Message, error) {
	return await(ctx, wait, &s.q.changes, func() ([]Message, error) {
		s.q.mu.Lock()
		defer s.q.mu.Unlock()
		if err := s.check(); err != nil {
			return nil, err
		}
		return s.q.lock(limit, s.ID), nil
	})
}

// Renew extends the session lock by the queue's lock duration.
func (s *Session) Renew(context.Context) error {
	s.q.mu.Lock()
	defer s.q.mu.Unlock()
	if err := s.check(); err != nil {
		return err
	}
	s.q.sessions[s.ID] = sessionLock{token: s.token, until: s.q.now().Add(s.q.opts.LockDuration)}
	return nil
}

// Close releases the session for other receivers.
func (s *Session) Close(context.Context) error {
	s.q.mu.Lock()
	defer s.q.mu.Unlock()
	if s.q.sessions[s.ID].token == s.token {
		delete(s.q.sessions, s.ID)
		s.q.changes.notify()
	}
	return nil
}

var (
	_ replication.ChangePublisher = (*Hub)(nil)
	_ replication.JobSender       = (*Queue)(nil)
)
