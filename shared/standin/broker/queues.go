package broker

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/standby-dr/standby/shared/replication"
)

// Message is a message to send.
type Message struct {
	MessageID  string
	SessionID  string
	Body       []byte
	Properties map[string]string
}

// ReceivedMessage is a message as a receiver sees it, under a peek-lock (LockToken), or as read from the
// dead-letter queue (DeadLetterReason set, no lock).
type ReceivedMessage struct {
	Message
	SequenceNumber        int64
	LockToken             string
	LockedUntil           time.Time
	DeliveryCount         int
	EnqueuedTime          time.Time
	DeadLetterReason      string
	DeadLetterDescription string
}

// Service Bus's words for the automatic dead-lettering, so operators see the same reason here and there.
const (
	ReasonMaxDelivery      = "MaxDeliveryCountExceeded"
	maxDeliveryDescription = "Message could not be consumed after %d delivery attempts."
)

type queueSettings struct {
	requiresSession bool
	lockMs          int64
	maxDelivery     int
	dedupMs         int64
}

func (b *Broker) settings(ctx context.Context, tx *sql.Tx, queue string) (queueSettings, error) {
	var s queueSettings
	err := tx.QueryRowContext(ctx, `SELECT requires_session, lock_ms, max_delivery, dedup_ms FROM queues WHERE name=?`, queue).
		Scan(&s.requiresSession, &s.lockMs, &s.maxDelivery, &s.dedupMs)
	if errors.Is(err, sql.ErrNoRows) {
		return s, fmt.Errorf("queue %q: %w", queue, errUnknownEntity)
	}
	return s, err
}

// Send enqueues a message, visible at once.
func (b *Broker) Send(ctx context.Context, queue string, msg Message) error {
	_, err := b.Schedule(ctx, queue, msg, time.Time{})
	return err
}

// Schedule enqueues a message that stays invisible until at and returns its sequence number for
// CancelScheduled. A message whose id was seen within the queue's duplicate-detection window is dropped
// silently, as Service Bus does; its sequence number is then 0.
func (b *Broker) Schedule(ctx context.Context, queue string, msg Message, at time.Time) (int64, error) {
	var seq int64
	err := b.tx(ctx, func(tx *sql.Tx) error {
		s, err := b.settings(ctx, tx, queue)
		if err != nil {
			return err
		}
		if s.requiresSession && msg.SessionID == "" {
			return fmt.Errorf("queue %q requires sessions and the message has no session id: %w", queue, replication.ErrInvalid)
		}
		now := b.nowMs()
		if msg.MessageID != "" && s.dedupMs > 0 {
			var seen int64
			err := tx.QueryRowContext(ctx, `SELECT at_ms FROM dedup WHERE queue=? AND message_id=?`, queue, msg.MessageID).Scan(&seen)
			if err == nil && seen > now-s.dedupMs {
				return nil
			}
			if _, err := tx.ExecContext(ctx, `INSERT INTO dedup(queue, message_id, at_ms) VALUES(?,?,?)
				ON CONFLICT(queue, message_id) DO UPDATE SET at_ms=excluded.at_ms`, queue, msg.MessageID, now); err != nil {
				return err
			}
		}
		available, state := now, "active"
		if !at.IsZero() && at.UnixMilli() > now {
			available, state = at.UnixMilli(), "scheduled"
		}
		body := msg.Body
		if body == nil {
			body = []byte{}
		}
		res, err := tx.ExecContext(ctx, `INSERT INTO messages(queue, message_id, session_id, body, props, enqueued_ms, available_ms, state)
			VALUES(?,?,?,?,?,?,?,?)`, queue, msg.MessageID, msg.SessionID, body, encodeProps(msg.Properties), now, available, state)
		if err != nil {
			return err
		}
		seq, err = res.LastInsertId()
		return err
	})
	return seq, err
}

// CancelScheduled withdraws a scheduled message that is not yet visible; ErrNotFound otherwise.
func (b *Broker) CancelScheduled(ctx context.Context, queue string, seq int64) error {
	return b.tx(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `DELETE FROM messages WHERE queue=? AND seq=? AND state='scheduled' AND available_ms>?`, queue, seq, b.nowMs())
		if err != nil {
			return err
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return fmt.Errorf("scheduled message %d on %q: already enqueued or cancelled: %w", seq, queue, replication.ErrNotFound)
		}
		return nil
	})
}

// expireLocks releases message locks that ran out: the message becomes available again, or goes to the
// dead-letter queue when it has been delivered MaxDeliveryCount times.
func (b *Broker) expireLocks(ctx context.Context, tx *sql.Tx, queue string, s queueSettings, now int64) error {
	if _, err := tx.ExecContext(ctx, `UPDATE messages SET state='deadletter', lock_token=NULL, dl_reason=?, dl_description=?
		WHERE queue=? AND lock_token IS NOT NULL AND locked_until_ms<? AND delivery_count>=?`,
		ReasonMaxDelivery, fmt.Sprintf(maxDeliveryDescription, s.maxDelivery), queue, now, s.maxDelivery); err != nil {
		return err
	}
	_, err := tx.ExecContext(ctx, `UPDATE messages SET lock_token=NULL WHERE queue=? AND lock_token IS NOT NULL AND locked_until_ms<?`, queue, now)
	return err
}

// lockMessages locks up to max available messages (of one session when session is not nil), in order.
func (b *Broker) lockMessages(ctx context.Context, tx *sql.Tx, queue string, session *string, max int) ([]ReceivedMessage, error) {
	s, err := b.settings(ctx, tx, queue)
	if err != nil {
		return nil, err
	}
	now := b.nowMs()
	if err := b.expireLocks(ctx, tx, queue, s, now); err != nil {
		return nil, err
	}
	query := `SELECT seq, message_id, session_id, body, props, enqueued_ms, delivery_count FROM messages
		WHERE queue=? AND state IN ('active','scheduled') AND available_ms<=? AND lock_token IS NULL`
	args := []any{queue, now}
	if session != nil {
		query += ` AND session_id=?`
		args = append(args, *session)
	}
	query += ` ORDER BY seq LIMIT ?`
	args = append(args, max)
	rows, err := tx.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, err
	}
	var out []ReceivedMessage
	for rows.Next() {
		var m ReceivedMessage
		var enq int64
		var props string
		if err := rows.Scan(&m.SequenceNumber, &m.MessageID, &m.SessionID, &m.Body, &props, &enq, &m.DeliveryCount); err != nil {
			rows.Close()
			return nil, err
		}
		m.Properties = decodeProps(props)
		m.EnqueuedTime = time.UnixMilli(enq).UTC()
		out = append(out, m)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, err
	}
	for i := range out {
		m := &out[i]
		m.LockToken = newToken()
		m.DeliveryCount++
		m.LockedUntil = time.UnixMilli(now + s.lockMs).UTC()
		if _, err := tx.ExecContext(ctx, `UPDATE messages SET state='active', lock_token=?, locked_until_ms=?, delivery_count=? WHERE seq=?`,
			m.LockToken, now+s.lockMs, m.DeliveryCount, m.SequenceNumber); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// Receive peek-locks up to max messages of a queue without sessions, waiting up to wait for the first.
func (b *Broker) Receive(ctx context.Context, queue string, max int, wait time.Duration) ([]ReceivedMessage, error) {
	return poll(ctx, wait, func() (out []ReceivedMessage, err error) {
		err = b.tx(ctx, func(tx *sql.Tx) error {
			s, err := b.settings(ctx, tx, queue)
			if err != nil {
				return err
			}
			if s.requiresSession {
				return fmt.Errorf("queue %q requires sessions: accept a session to receive: %w", queue, replication.ErrInvalid)
			}
			out, err = b.lockMessages(ctx, tx, queue, nil, max)
			return err
		})
		return out, err
	})
}

// settle applies a settlement to a locked message; a lock that expired or was settled → ErrLockLost.
func (b *Broker) settle(ctx context.Context, queue, token string, fn func(tx *sql.Tx, seq int64, deliveries int, s queueSettings) error) error {
	return b.tx(ctx, func(tx *sql.Tx) error {
		s, err := b.settings(ctx, tx, queue)
		if err != nil {
			return err
		}
		var seq, until int64
		var deliveries int
		err = tx.QueryRowContext(ctx, `SELECT seq, locked_until_ms, delivery_count FROM messages WHERE queue=? AND lock_token=?`, queue, token).
			Scan(&seq, &until, &deliveries)
		if errors.Is(err, sql.ErrNoRows) || (err == nil && until < b.nowMs()) {
			return fmt.Errorf("the message lock on %q expired or the message was already settled: %w", queue, replication.ErrLockLost)
		}
		if err != nil {
			return err
		}
		return fn(tx, seq, deliveries, s)
	})
}

// Complete removes a locked message: it has been processed.
func (b *Broker) Complete(ctx context.Context, queue, lockToken string) error {
	return b.settle(ctx, queue, lockToken, func(tx *sql.Tx, seq int64, _ int, _ queueSettings) error {
		_, err := tx.ExecContext(ctx, `DELETE FROM messages WHERE seq=?`, seq)
		return err
	})
}

// Abandon releases a locked message for redelivery, or dead-letters it when it has been delivered
// MaxDeliveryCount times.
func (b *Broker) Abandon(ctx context.Context, queue, lockToken string) error {
	return b.settle(ctx, queue, lockToken, func(tx *sql.Tx, seq int64, deliveries int, s queueSettings) error {
		if deliveries >= s.maxDelivery {
			_, err := tx.ExecContext(ctx, `UPDATE messages SET state='deadletter', lock_token=NULL, dl_reason=?, dl_description=? WHERE seq=?`,
				ReasonMaxDelivery, fmt.Sprintf(maxDeliveryDescription, s.maxDelivery), seq)
			return err
		}
		_, err := tx.ExecContext(ctx, `UPDATE messages SET lock_token=NULL, locked_until_ms=0 WHERE seq=?`, seq)
		return err
	})
}

// DeadLetter moves a locked message to the dead-letter queue with a reason and description.
func (b *Broker) DeadLetter(ctx context.Context, queue, lockToken, reason, description string) error {
	return b.settle(ctx, queue, lockToken, func(tx *sql.Tx, seq int64, _ int, _ queueSettings) error {
		_, err := tx.ExecContext(ctx, `UPDATE messages SET state='deadletter', lock_token=NULL, dl_reason=?, dl_description=? WHERE seq=?`, reason, description, seq)
		return err
	})
}

// RenewMessageLock extends a message lock by the queue's lock duration and returns the new expiry.
func (b *Broker) RenewMessageLock(ctx context.Context, queue, lockToken string) (time.Time, error) {
	var until int64
	err := b.settle(ctx, queue, lockToken, func(tx *sql.Tx, seq int64, _ int, s queueSettings) error {
		until = b.nowMs() + s.lockMs
		_, err := tx.ExecContext(ctx, `UPDATE messages SET locked_until_ms=? WHERE seq=?`, until, seq)
		return err
	})
	return time.UnixMilli(until).UTC(), err
}

// DeadLetters reads (without removing) up to max messages of the queue's dead-letter queue, oldest first.
func (b *Broker) DeadLetters(ctx context.Context, queue string, max int) ([]ReceivedMessage, error) {
	// Settle pending lock expiries first so a message that ran out of deliveries is listed.
	if err := b.tx(ctx, func(tx *sql.Tx) error {
		s, err := b.settings(ctx, tx, queue)
		if err != nil {
			return err
		}
		return b.expireLocks(ctx, tx, queue, s, b.nowMs())
	}); err != nil {
		return nil, err
	}
	rows, err := b.db.QueryContext(ctx, `SELECT seq, message_id, session_id, body, props, enqueued_ms, delivery_count, dl_reason, dl_description
		FROM messages WHERE queue=? AND state='deadletter' ORDER BY seq LIMIT ?`, queue, max)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []ReceivedMessage
	for rows.Next() {
		var m ReceivedMessage
		var enq int64
		var props string
		if err := rows.Scan(&m.SequenceNumber, &m.MessageID, &m.SessionID, &m.Body, &props, &enq, &m.DeliveryCount, &m.DeadLetterReason, &m.DeadLetterDescription); err != nil {
			return nil, err
		}
		m.Properties = decodeProps(props)
		m.EnqueuedTime = time.UnixMilli(enq).UTC()
		out = append(out, m)
	}
	return out, rows.Err()
}

// QueueCounts reports how many messages a queue holds: active (visible or locked), scheduled, dead-lettered.
type QueueCounts struct {
	Active, Scheduled, DeadLettered int
}

// Counts returns the queue's message counts.
func (b *Broker) Counts(ctx context.Context, queue string) (QueueCounts, error) {
	var c QueueCounts
	err := b.db.QueryRowContext(ctx, `SELECT
		COALESCE(SUM(state='active' OR (state='scheduled' AND available_ms<=?)),0),
		COALESCE(SUM(state='scheduled' AND available_ms>?),0),
		COALESCE(SUM(state='deadletter'),0) FROM messages WHERE queue=?`, b.nowMs(), b.nowMs(), queue).Scan(&c.Active, &c.Scheduled, &c.DeadLettered)
	return c, err
}

// LockDuration returns the queue's lock duration (receivers renew at a fraction of it).
func (b *Broker) LockDuration(ctx context.Context, queue string) (time.Duration, bool, error) {
	var lockMs int64
	var sessions bool
	err := b.db.QueryRowContext(ctx, `SELECT lock_ms, requires_session FROM queues WHERE name=?`, queue).Scan(&lockMs, &sessions)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, false, fmt.Errorf("queue %q: %w", queue, errUnknownEntity)
	}
	return time.Duration(lockMs) * time.Millisecond, sessions, err
}
