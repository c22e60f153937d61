package servicebus_test

import (
	"context"
	"errors"
	"os"
	"strconv"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/messaging/azservicebus"
	"github.com/standby-dr/standby/shared/azure/azconn"
	"github.com/standby-dr/standby/shared/azure/servicebus"
	"github.com/standby-dr/standby/shared/replication"
	"github.com/standby-dr/standby/shared/testkit/brokertest"
)

type azureQueue struct {
	client      *azservicebus.Client
	sender      *servicebus.Sender
	queue       string
	lock        time.Duration
	maxDelivery int
	dedup       bool
}

func (q *azureQueue) Sender() replication.JobSender { return q.sender }
func (q *azureQueue) AcceptSession(ctx context.Context, id string) (brokertest.Session, error) {
	actx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	r, err := q.client.AcceptSessionForQueue(actx, q.queue, id, nil)
	if err != nil {
		return nil, servicebus.Translate(err, "accepting session "+id)
	}
	return &azureSession{r}, nil
}
func (q *azureQueue) AcceptNextSession(ctx context.Context, wait time.Duration) (brokertest.Session, error) {
	actx, cancel := context.WithTimeout(ctx, wait)
	defer cancel()
	r, err := q.client.AcceptNextSessionForQueue(actx, q.queue, nil)
	if err != nil {
		return nil, servicebus.Translate(err, "accepting the next session")
	}
	return &azureSession{r}, nil
}
func (q *azureQueue) DeadLetters(ctx context.Context, max int) ([]brokertest.QueueMessage, error) {
	dls, err := servicebus.PeekDeadLetters(ctx, q.client, q.queue, max)
	out := make([]brokertest.QueueMessage, len(dls))
	for i, d := range dls {
		out[i] = brokertest.QueueMessage{MessageID: d.MessageID, SessionID: d.SessionID, Body: d.Body, DeadLetterReason: d.Reason}
	}
	return out, err
}
func (q *azureQueue) LockDuration() time.Duration { return q.lock }
func (q *azureQueue) MaxDeliveryCount() int       { return q.maxDelivery }
func (q *azureQueue) DuplicateDetection() bool    { return q.dedup }

type azureSession struct{ r *azservicebus.SessionReceiver }

func (s *azureSession) ID() string { return s.r.SessionID() }
func (s *azureSession) Receive(ctx context.Context, max int, wait time.Duration) ([]brokertest.QueueMessage, error) {
	rctx, cancel := context.WithTimeout(ctx, wait)
	defer cancel()
	msgs, err := s.r.ReceiveMessages(rctx, max, nil)
	if err != nil && !errors.Is(err, context.DeadlineExceeded) {
		return nil, servicebus.Translate(err, "receiving")
	}
	out := make([]brokertest.QueueMessage, len(msgs))
	for i, m := range msgs {
		out[i] = brokertest.QueueMessage{MessageID: m.MessageID, Body: m.Body, DeliveryCount: int(m.DeliveryCount), Handle: m}
		if m.SessionID != nil {
			out[i].SessionID = *m.SessionID
		}
	}
	return out, nil
}
func (s *azureSession) Complete(ctx context.Context, m brokertest.QueueMessage) error {
	return servicebus.Translate(s.r.CompleteMessage(ctx, m.Handle.(*azservicebus.ReceivedMessage), nil), "completing")
}
func (s *azureSession) Abandon(ctx context.Context, m brokertest.QueueMessage) error {
	return servicebus.Translate(s.r.AbandonMessage(ctx, m.Handle.(*azservicebus.ReceivedMessage), nil), "abandoning")
}
func (s *azureSession) DeadLetter(ctx context.Context, m brokertest.QueueMessage, reason, desc string) error {
	return servicebus.Translate(s.r.DeadLetterMessage(ctx, m.Handle.(*azservicebus.ReceivedMessage),
		&azservicebus.DeadLetterOptions{Reason: &reason, ErrorDescription: &desc}), "dead-lettering")
}
func (s *azureSession) RenewLock(ctx context.Context) error {
	return servicebus.Translate(s.r.RenewSessionLock(ctx, nil), "renewing the session lock")
}
func (s *azureSession) Close(ctx context.Context) error { return s.r.Close(ctx) }

func envInt(name string, def int) int {
	if v, err := strconv.Atoi(os.Getenv(name)); err == nil {
		return v
	}
	return def
}

// TestQueueContractAzure runs the queue contract against a real namespace. It needs
// STANDBY_TEST_SERVICEBUS (connection string) and STANDBY_TEST_QUEUE (a session-enabled queue, default
// "jobs"); STANDBY_TEST_QUEUE_LOCK_SECONDS, _MAX_DELIVERY and _DEDUP (1 when duplicate detection is on)
// describe it (defaults 60, 10, 1).
func TestQueueContractAzure(t *testing.T) {
	cs := os.Getenv("STANDBY_TEST_SERVICEBUS")
	if cs == "" {
		t.Skip("STANDBY_TEST_SERVICEBUS is not set: the queue contract runs against the embedded broker only (shared/standin/broker)")
	}
	queue := os.Getenv("STANDBY_TEST_QUEUE")
	if queue == "" {
		queue = "jobs"
	}
	client, err := servicebus.NewClient(azconn.Setting{Name: "STANDBY_TEST_SERVICEBUS", ConnectionString: cs})
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close(context.Background())
	sender, err := servicebus.NewSender(client, queue)
	if err != nil {
		t.Fatal(err)
	}
	brokertest.RunQueue(t, &azureQueue{client: client, sender: sender, queue: queue,
		lock:        time.Duration(envInt("STANDBY_TEST_QUEUE_LOCK_SECONDS", 60)) * time.Second,
		maxDelivery: envInt("STANDBY_TEST_QUEUE_MAX_DELIVERY", 10), dedup: envInt("STANDBY_TEST_QUEUE_DEDUP", 1) == 1})
}
