package broker

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/standby-dr/standby/shared/replication"
)

// ErrNoSession is returned by AcceptNextSession when no session has messages within the wait.
var ErrNoSession = errors.New("no session with available messages")

// Session is a held session of a session-enabled queue: only its holder receives the session's messages,
// in order, until it closes the session or its lock expires.
type Session struct {
	b     *Broker
	Queue string
	ID    string
	token string
}

// AcceptNextSession locks the session whose oldest available message is oldest among the sessions
// nobody holds, waiting up to wait; ErrNoSession when none has messages.
func (b *Broker) AcceptNextSession(ctx context.Context, queue string, wait time.Duration) (*Session, error) {
	sessions, err := poll(ctx, wait, func() ([]*Session, error) {
		var found []*Session
		err := b.tx(ctx, func(tx *sql.Tx) error {
			s, err := b.settings(ctx, tx, queue)
			if err != nil {
				return err
			}
			if !s.requiresSession {
				return fmt.Errorf("queue %q does not use sessions: %w", queue, replication.ErrInvalid)
			}
			now := b.nowMs()
			if err := b.expireLocks(ctx, tx, queue, s, now); err != nil {
				return err
			}
			if _, err := tx.ExecContext(ctx, `DELETE FROM session_locks WHERE queue=? AND locked_until_ms<?`, queue, now); err != nil {
				return err
			}
			var id string
			err = tx.QueryRowContext(ctx, `SELECT session_id FROM messages m WHERE queue=? AND state IN ('active','scheduled')
				AND available_ms<=? AND lock_token IS NULL
				AND NOT EXISTS (SELECT 1 FROM session_locks l WHERE l.queue=m.queue AND l.session_id=m.session_id)
				ORDER BY seq LIMIT 1`, queue, now).Scan(&id)
			if errors.Is(err, sql.ErrNoRows) {
				return nil
			}
			if err != nil {
				return err
			}
			token := newToken()
			if _, err := tx.ExecContext(ctx, `INSERT INTO session_locks(queue, session_id, token, locked_until_ms) VALUES(?,?,?,?)`,
				queue, id, token, now+s.lockMs); err != nil {
				return err
			}
			found = append(found, &Session{b: b, Queue: queue, ID: id, token: token})
			return nil
		})
		return found, err
	})
	if err != nil {
		return nil, err
	}
	if len(sessions) == 0 {
		return nil, ErrNoSession
	}
	return sessions[0], nil
}

// AcceptSession locks a named session; ErrLockLost when another receiver holds it.
func (b *Broker) AcceptSession(ctx context.Context, queue, sessionID string) (*Session, error) {
	sess := &Session{b: b, Queue: queue, ID: sessionID, token: newToken()}
	err := b.tx(ctx, func(tx *sql.Tx) error {
		s, err := b.settings(ctx, tx, queue)
		if err != nil {
			return err
		}
		now := b.nowMs()
		var until int64
		err = tx.QueryRowContext(ctx, `SELECT locked_until_ms FROM session_locks WHERE queue=? AND session_id=?`, queue, sessionID).Scan(&until)
		if err == nil && until >= now {
			return fmt.Errorf("session %q of %q is held by another receiver: %w", sessionID, queue, replication.ErrLockLost)
		}
		_, err = tx.ExecContext(ctx, `INSERT INTO session_locks(queue, session_id, token, locked_until_ms) VALUES(?,?,?,?)
			ON CONFLICT(queue, session_id) DO UPDATE SET token=excluded.token, locked_until_ms=excluded.locked_until_ms`,
			queue, sessionID, sess.token, now+s.lockMs)
		return err
	})
	if err != nil {
		return nil, err
	}
	return sess, nil
}

func (s *Session) checkLock(ctx context.Context, tx *sql.Tx) error {
	var token string
	var until int64
	err := tx.QueryRowContext(ctx, `SELECT token, locked_until_ms FROM session_locks WHERE queue=? AND session_id=?`, s.Queue, s.ID).Scan(&token, &until)
	if err != nil || token != s.token || until < s.b.nowMs() {
		return fmt.Errorf("session %q of %q: the session lock expired or was taken: %w", s.ID, s.Queue, replication.ErrLockLost)
	}
	return nil
}

// Receive peek-locks up to max messages of the session, in order, waiting up to wait for the first.
func (s *Session) Receive(ctx context.Context, max int, wait time.Duration) ([]ReceivedMessage, error) {
	return poll(ctx, wait, func() (out []ReceivedMessage, err error) {
		err = s.b.tx(ctx, func(tx *sql.Tx) error {
			if err := s.checkLock(ctx, tx); err != nil {
				return err
			}
			out, err = s.b.lockMessages(ctx, tx, s.Queue, &s.ID, max)
			return err
		})
		return out, err
	})
}

// Renew extends the session lock by the queue's lock duration.
func (s *Session) Renew(ctx context.Context) error {
	return s.b.tx(ctx, func(tx *sql.Tx) error {
		if err := s.checkLock(ctx, tx); err != nil {
			return err
		}
		qs, err := s.b.settings(ctx, tx, s.Queue)
		if err != nil {
			return err
		}
		_, err = tx.ExecContext(ctx, `UPDATE session_locks SET locked_until_ms=? WHERE queue=? AND session_id=?`, s.b.nowMs()+qs.lockMs, s.Queue, s.ID)
		return err
	})
}

// Close releases the session for other receivers.
func (s *Session) Close(ctx context.Context) error {
	return s.b.tx(ctx, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, `DELETE FROM session_locks WHERE queue=? AND session_id=? AND token=?`, s.Queue, s.ID, s.token)
		return err
	})
}
