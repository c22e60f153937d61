package memstore

import (
	"context"
	"testing"
	"time"

	"github.com/standby-dr/standby/shared/replication"
	"github.com/standby-dr/standby/shared/testkit/brokertest"
)

type hubBinding struct{ h *Hub }

func (b hubBinding) Publisher() replication.ChangePublisher      { return b.h }
func (b hubBinding) PartitionCount(context.Context) (int, error) { return b.h.PartitionCount(), nil }
func (b hubBinding) LastSequence(_ context.Context, p int) (int64, error) {
	return b.h.LastSequence(p), nil
}
func (b hubBinding) Read(ctx context.Context, p int, after int64, limit int, wait time.Duration) ([]brokertest.HubEvent, error) {
	events, err := b.h.Read(ctx, p, after, limit, wait)
	out := make([]brokertest.HubEvent, len(events))
	for i, e := range events {
		out[i] = brokertest.HubEvent{SequenceNumber: e.SequenceNumber, Body: e.Body, PartitionKey: e.PartitionKey, Properties: e.Properties}
	}
	return out, err
}
func (b hubBinding) Checkpoint(_ context.Context, group string, p int, e brokertest.HubEvent) error {
	b.h.Checkpoint(group, p, e.SequenceNumber)
	return nil
}
func (b hubBinding) LoadCheckpoint(_ context.Context, group string, p int) (int64, bool, error) {
	seq, ok := b.h.LoadCheckpoint(group, p)
	return seq, ok, nil
}

type queueBinding struct{ q *Queue }

func (b queueBinding) Sender() replication.JobSender { return b.q }
func (b queueBinding) AcceptSession(ctx context.Context, id string) (brokertest.Session, error) {
	s, err := b.q.AcceptSession(ctx, id)
	if err != nil {
		return nil, err
	}
	return sessionBinding{s}, nil
}
func (b queueBinding) AcceptNextSession(ctx context.Context, wait time.Duration) (brokertest.Session, error) {
	s, err := b.q.AcceptNextSession(ctx, wait)
	if err != nil {
		return nil, err
	}
	return sessionBinding{s}, nil
}
func (b queueBinding) DeadLetters(_ context.Context, limit int) ([]brokertest.QueueMessage, error) {
	dead := b.q.DeadLetters()
	return toQueueMessages(dead[:min(limit, len(dead))]), nil
}
func (b queueBinding) LockDuration() time.Duration { return b.q.opts.LockDuration }
func (b queueBinding) MaxDeliveryCount() int       { return b.q.opts.MaxDeliveryCount }
func (b queueBinding) DuplicateDetection() bool    { return b.q.opts.DuplicateDetection > 0 }

type sessionBinding struct{ s *Session }

func (b sessionBinding) ID() string { return b.s.ID }
func (b sessionBinding) Receive(ctx context.Context, limit int, wait time.Duration) ([]brokertest.QueueMessage, error) {
	msgs, err := b.s.Receive(ctx, limit, wait)
	return toQueueMessages(msgs), err
}
func (b sessionBinding) Complete(ctx context.Context, m brokertest.QueueMessage) error {
	return b.s.q.Complete(ctx, m.Handle.(Message))
}
func (b sessionBinding) Abandon(ctx context.Context, m brokertest.QueueMessage) error {
	return b.s.q.Abandon(ctx, m.Handle.(Message))
}
func (b sessionBinding) DeadLetter(ctx context.Context, m brokertest.QueueMessage, reason, desc string) error {
	return b.s.q.DeadLetter(ctx, m.Handle.(Message), reason, desc)
}
func (b sessionBinding) RenewLock(ctx context.Context) error { return b.s.Renew(ctx) }
func (b sessionBinding) Close(ctx context.Context) error     { return b.s.Close(ctx) }

func toQueueMessages(msgs []Message) []brokertest.QueueMessage {
	out := make([]brokertest.QueueMessage, len(msgs))
	for i, m := range msgs {
		out[i] = brokertest.QueueMessage{MessageID: m.MessageID, SessionID: m.SessionID, Body: m.Body,
			DeliveryCount: m.DeliveryCount, DeadLetterReason: m.DeadLetterReason, Handle: m}
	}
	return out
}

func TestHubContract(t *testing.T) {
	t.Parallel()
	brokertest.RunHub(t, hubBinding{NewHub(4)})
}

func TestQueueContract(t *testing.T) {
	t.Parallel()
	q := NewQueue(QueueOptions{LockDuration: 2 * time.Second, MaxDeliveryCount: 3, Sessions: true, DuplicateDetection: time.Minute})
	brokertest.RunQueue(t, queueBinding{q})
}
