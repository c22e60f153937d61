package agent

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/standby-dr/standby/shared/replication"
)

// uploadsInFlight bounds the payload uploads the sender runs at once.
const uploadsInFlight = 4

// sender stores sealed batches (several uploads in flight) and publishes their descriptors strictly in
// sequence order, each only once its own payload is stored; every step is retried until it goes through.
func (a *Agent) sender(ctx context.Context) {
	defer close(a.done)
	type upload struct {
		b       *replication.Batch
		payload []byte
		desc    replication.Descriptor
		stored  chan error
	}
	inOrder := make(chan *upload, uploadsInFlight)
	slots := make(chan struct{}, uploadsInFlight)
	go func() {
		defer close(inOrder)
		for b := range a.queue {
			if a.abandoned(b.Seq) {
				a.cfg.Log.Warn("a batch of the abandoned numbering dropped", "seq", b.Seq)
				continue
			}
			payload, desc, err := replication.SignBatch(a.cfg.StreamKey, b, a.cfg.Compress)
			u := &upload{b: b, payload: payload, desc: desc, stored: make(chan error, 1)}
			if err != nil { // a bug, not an outage: stop rather than skip a sequence number
				u.stored <- fmt.Errorf("encoding batch %d: %w", b.Seq, err)
			} else {
				slots <- struct{}{}
				go func() {
					defer func() { <-slots }()
					u.stored <- a.retry(ctx, "storing batch", func() error {
						return replication.StoreBatch(ctx, a.cfg.Journal, a.cfg.StreamKey, a.cfg.Group, b.Seq, payload)
					})
				}()
			}
			inOrder <- u
		}
	}()
	failed := false
	for u := range inOrder {
		err := <-u.stored
		if failed {
			continue // drain
		}
		if errors.Is(err, replication.ErrConflict) {
			// Its sequence holds a batch signed with the group's key that is not this one: another
			// holder of the stream key wrote it, and apply takes that one. This batch's writes are
			// not in the stream: the run reports it and resyncs (TakeConflict).
			a.cfg.Log.Error("the group's journal holds another batch signed with its key at this sequence; resyncing", "seq", u.b.Seq, "err", err)
			a.conflict.Store(u.b.Seq)
			continue
		}
		if err == nil {
			err = a.retry(ctx, "publishing descriptor", func() error { return a.publish(ctx, u.desc) })
		}
		if err != nil {
			failed = true
			a.cfg.Log.Error("sending stopped", "seq", u.b.Seq, "err", err)
			select {
			case a.sendErr <- err:
			default:
			}
			continue
		}
		a.statsMu.Lock()
		a.stats.LastPublished = u.b.Seq
		a.stats.Batches++
		a.stats.PublishedBytes += int64(len(u.payload))
		a.statsMu.Unlock()
		a.saveState(state{NextSeq: u.b.Seq + 1, Published: u.b.Seq})
	}
}

func (a *Agent) publish(ctx context.Context, d replication.Descriptor) error {
	body, _ := json.Marshal(d)
	return a.cfg.Publisher.Publish(ctx, d.Group, []replication.ChangeEvent{{Body: body, Properties: map[string]string{"kind": d.Kind}}})
}

// retry runs fn until it succeeds (a conflict excepted), each failure noted as the agent's last error.
func (a *Agent) retry(ctx context.Context, what string, fn func() error) error {
	log := a.cfg.Log
	delay := 100 * time.Millisecond
	for {
		err := fn()
		if err == nil || errors.Is(err, replication.ErrConflict) {
			return err // a batch stored with other content stays so: retrying changes nothing
		}
		log.Warn(what+" failed; retrying", "err", err, "delay", delay)
		a.NoteError(what, err)
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(delay):
		}
		if delay < 5*time.Second {
			delay *= 2
		}
	}
}
