package broker

import (
	"context"
	"time"

	"github.com/standby-dr/standby/shared/replication"
)

// ChangePublisher publishes the change stream to a hub of the embedded broker.
type ChangePublisher struct {
	broker *Broker
	hub    string
}

// NewChangePublisher returns a replication.ChangePublisher over the broker's hub.
func NewChangePublisher(b *Broker, hub string) *ChangePublisher {
	return &ChangePublisher{broker: b, hub: hub}
}

// Publish sends the events in sends of at most MaxEventBytes, in order, to the key's partition.
func (p *ChangePublisher) Publish(ctx context.Context, partitionKey string, events []replication.ChangeEvent) error {
	var batch []Event
	size := 0
	flush := func() error {
		if len(batch) == 0 {
			return nil
		}
		_, err := p.broker.Publish(ctx, p.hub, partitionKey, batch)
		batch, size = nil, 0
		return err
	}
	for _, e := range events {
		ev := Event{Body: e.Body, Properties: e.Properties}
		if n := eventSize(ev); size+n > MaxEventBytes && len(batch) > 0 {
			if err := flush(); err != nil {
				return err
			}
		}
		batch = append(batch, ev)
		size += eventSize(ev)
	}
	return flush()
}

// Close does nothing: the broker handle belongs to the caller.
func (p *ChangePublisher) Close(context.Context) error { return nil }

// JobSender sends job messages to a queue of the embedded broker.
type JobSender struct {
	broker *Broker
	queue  string
}

// NewJobSender returns a replication.JobSender over the broker's queue.
func NewJobSender(b *Broker, queue string) *JobSender { return &JobSender{broker: b, queue: queue} }

func toMessage(m replication.JobMessage) Message {
	return Message{MessageID: m.MessageID, SessionID: m.SessionID, Body: m.Body, Properties: m.Properties}
}

// Send enqueues the message.
func (s *JobSender) Send(ctx context.Context, msg replication.JobMessage) error {
	return s.broker.Send(ctx, s.queue, toMessage(msg))
}

// Schedule enqueues the message for at.
func (s *JobSender) Schedule(ctx context.Context, msg replication.JobMessage, at time.Time) (int64, error) {
	return s.broker.Schedule(ctx, s.queue, toMessage(msg), at)
}

// CancelScheduled withdraws a scheduled message.
func (s *JobSender) CancelScheduled(ctx context.Context, seq int64) error {
	return s.broker.CancelScheduled(ctx, s.queue, seq)
}

// Close does nothing: the broker handle belongs to the caller.
func (s *JobSender) Close(context.Context) error { return nil }

var (
	_ replication.ChangePublisher = (*ChangePublisher)(nil)
	_ replication.JobSender       = (*JobSender)(nil)
)
