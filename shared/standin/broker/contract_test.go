package broker

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/standby-dr/standby/shared/replication"
	"github.com/standby-dr/standby/shared/testkit/brokertest"
)

type hubBinding struct {
	b   *Broker
	hub string
}

func (h hubBinding) Publisher() replication.ChangePublisher { return NewChangePublisher(h.b, h.hub) }
func (h hubBinding) PartitionCount(ctx context.Context) (int, error) {
	return h.b.PartitionCount(ctx, h.hub)
}
func (h hubBinding) LastSequence(ctx context.Context, p int) (int64, error) {
	var last int64
	err := h.b.db.QueryRowContext(ctx, `SELECT next_seq-1 FROM hub_partitions WHERE hub=? AND partition=?`, h.hub, p).Scan(&last)
	return last, err
}
func (h hubBinding) Read(ctx context.Context, p int, after int64, max int, wait time.Duration) ([]brokertest.HubEvent, error) {
	events, err := h.b.ReadEvents(ctx, h.hub, p, after, max, wait)
	out := make([]brokertest.HubEvent, len(events))
	for i, e := range events {
		out[i] = brokertest.HubEvent{SequenceNumber: e.SequenceNumber, Body: e.Body, PartitionKey: e.PartitionKey, Properties: e.Properties}
	}
	return out, err
}
func (h hubBinding) Checkpoint(ctx context.Context, group string, p int, e brokertest.HubEvent) error {
	return h.b.Checkpoint(ctx, h.hub, group, p, e.SequenceNumber, 0)
}
func (h hubBinding) LoadCheckpoint(ctx context.Context, group string, p int) (int64, bool, error) {
	return h.b.LoadCheckpoint(ctx, h.hub, group, p)
}

type queueBinding struct {
	b     *Broker
	queue string
	cfg   QueueConfig
}

func (q queueBinding) Sender() replication.JobSender { return NewJobSender(q.b, q.queue) }
func (q queueBinding) AcceptSession(ctx context.Context, id string) (brokertest.Session, error) {
	s, err := q.b.AcceptSession(ctx, q.queue, id)
	if err != nil {
		return nil, err
	}
	return sessionBinding{s}, nil
}
func (q queueBinding) AcceptNextSession(ctx context.Context, wait time.Duration) (brokertest.Session, error) {
	s, err := q.b.AcceptNextSession(ctx, q.queue, wait)
	if err != nil {
		return nil, err
	}
	return sessionBinding{s}, nil
}
func (q queueBinding) DeadLetters(ctx context.Context, max int) ([]brokertest.QueueMessage, error) {
	msgs, err := q.b.DeadLetters(ctx, q.queue, max)
	return toQueueMessages(msgs), err
}
func (q queueBinding) LockDuration() time.Duration {
	return time.Duration(q.cfg.LockDurationSeconds) * time.Second
}
func (q queueBinding) MaxDeliveryCount() int    { return q.cfg.MaxDeliveryCount }
func (q queueBinding) DuplicateDetection() bool { return q.cfg.DuplicateDetectionWindowSeconds > 0 }

type sessionBinding struct{ s *Session }

func (s sessionBinding) ID() string { return s.s.ID }
func (s sessionBinding) Receive(ctx context.Context, max int, wait time.Duration) ([]brokertest.QueueMessage, error) {
	msgs, err := s.s.Receive(ctx, max, wait)
	return toQueueMessages(msgs), err
}
func (s sessionBinding) Complete(ctx context.Context, m brokertest.QueueMessage) error {
	return s.s.b.Complete(ctx, s.s.Queue, m.Handle.(string))
}
func (s sessionBinding) Abandon(ctx context.Context, m brokertest.QueueMessage) error {
	return s.s.b.Abandon(ctx, s.s.Queue, m.Handle.(string))
}
func (s sessionBinding) DeadLetter(ctx context.Context, m brokertest.QueueMessage, reason, desc string) error {
	return s.s.b.DeadLetter(ctx, s.s.Queue, m.Handle.(string), reason, desc)
}
func (s sessionBinding) RenewLock(ctx context.Context) error { return s.s.Renew(ctx) }
func (s sessionBinding) Close(ctx context.Context) error     { return s.s.Close(ctx) }

func toQueueMessages(msgs []ReceivedMessage) []brokertest.QueueMessage {
	out := make([]brokertest.QueueMessage, len(msgs))
	for i, m := range msgs {
		out[i] = brokertest.QueueMessage{MessageID: m.MessageID, SessionID: m.SessionID, Body: m.Body,
			DeliveryCount: m.DeliveryCount, DeadLetterReason: m.DeadLetterReason, Handle: m.LockToken}
	}
	return out
}

func openTestBroker(t *testing.T) (*Broker, Config) {
	t.Helper()
	b, err := Open(filepath.Join(t.TempDir(), "broker.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	cfg := Config{
		EventHubs: []HubConfig{{Name: "changes", PartitionCount: 4}},
		Queues: []QueueConfig{{Name: "jobs", RequiresSession: true, LockDurationSeconds: 2, MaxDeliveryCount: 3,
			DuplicateDetectionWindowSeconds: 60}},
	}
	if err := b.Apply(context.Background(), cfg); err != nil {
		t.Fatal(err)
	}
	return b, cfg
}

func TestHubContract(t *testing.T) {
	b, _ := openTestBroker(t)
	brokertest.RunHub(t, hubBinding{b, "changes"})
}

func TestQueueContract(t *testing.T) {
	b, cfg := openTestBroker(t)
	brokertest.RunQueue(t, queueBinding{b, "jobs", cfg.Queues[0]})
}

func TestRetentionPrunesOldEvents(t *testing.T) {
	b, _ := openTestBroker(t)
	ctx := context.Background()
	now := time.Now()
	b.SetClock(func() time.Time { return now.Add(-25 * time.Hour) })
	if _, err := b.Publish(ctx, "changes", "k", []Event{{Body: []byte("old")}}); err != nil {
		t.Fatal(err)
	}
	b.SetClock(func() time.Time { return now })
	stored, err := b.Publish(ctx, "changes", "k", []Event{{Body: []byte("new")}})
	if err != nil {
		t.Fatal(err)
	}
	n, err := b.PruneEvents(ctx, "changes")
	if err != nil || n != 1 {
		t.Fatalf("pruned %d, %v; want 1 (retention 24 h)", n, err)
	}
	events, _ := b.ReadEvents(ctx, "changes", stored[0].Partition, -1, 10, 0)
	if len(events) != 1 || string(events[0].Body) != "new" || events[0].SequenceNumber != 1 {
		t.Fatalf("after pruning: %+v (sequence numbers must not be reused)", events)
	}
}
