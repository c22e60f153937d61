package backends

import (
	"context"

	"github.com/standby-dr/standby/shared/api/apiv1"
	"github.com/standby-dr/standby/shared/azure/azconn"
	"github.com/standby-dr/standby/shared/azure/servicebus"
	"github.com/standby-dr/standby/shared/backends/sourceside"
	"github.com/standby-dr/standby/shared/replication"
	"github.com/standby-dr/standby/shared/standin/broker"
)

// conn is an open messaging connection: its health check and how to release it.
type conn struct {
	check func(context.Context) error
	close func()
}

// queue is the job queue: Service Bus, or the embedded broker.
type queue struct {
	sender      replication.JobSender
	deadLetters func(ctx context.Context, max int) ([]apiv1.DeadLetterView, error)
	conn
}

// openMessaging opens a messaging setting's side: the embedded broker's when it names that, Azure's otherwise.
func openMessaging[T any](getenv func(string) string, setting string, onLocal func(*broker.Broker) T, onAzure func(azconn.Setting) (T, error)) (T, error) {
	var zero T
	s, err := azconn.Lookup(getenv, setting, "")
	if err != nil {
		return zero, err
	}
	if !azconn.IsEmbeddedBroker(s.ConnectionString) {
		return onAzure(s)
	}
	b, err := broker.OpenConnection(s.ConnectionString)
	if err != nil {
		return zero, err
	}
	return onLocal(b), nil
}

func openQueue(getenv func(string) string) (queue, error) {
	name := sourceside.OrDefault(getenv(SettingQueue), "jobs")
	return openMessaging(getenv, SettingSB, func(b *broker.Broker) queue { return localQueue(b, name) },
		func(s azconn.Setting) (queue, error) { return azureQueue(s, name) })
}

func azureQueue(s azconn.Setting, name string) (queue, error) {
	client, err := servicebus.NewClient(s)
	if err != nil {
		return queue{}, err
	}
	sender, err := servicebus.NewSender(client, name)
	if err != nil {
		return queue{}, err
	}
	deadLetters := func(ctx context.Context, max int) ([]apiv1.DeadLetterView, error) {
		dls, err := servicebus.PeekDeadLetters(ctx, client, name, max)
		out := make([]apiv1.DeadLetterView, len(dls))
		for i, m := range dls {
			out[i] = apiv1.DeadLetterView{MessageID: m.MessageID, SessionID: m.SessionID, Reason: m.Reason, Description: m.Description,
				Deliveries: int(m.Deliveries), Body: string(m.Body)}
		}
		return out, err
	}
	return queue{sender, deadLetters, conn{
		close: func() { sender.Close(context.Background()); client.Close(context.Background()) },
		check: func(ctx context.Context) error {
			_, err := servicebus.PeekDeadLetters(ctx, client, name, 1)
			return err
		}}}, nil
}

func localQueue(b *broker.Broker, name string) queue {
	deadLetters := func(ctx context.Context, max int) ([]apiv1.DeadLetterView, error) {
		msgs, err := b.DeadLetters(ctx, name, max)
		out := make([]apiv1.DeadLetterView, len(msgs))
		for i, m := range msgs {
			out[i] = apiv1.DeadLetterView{MessageID: m.MessageID, SessionID: m.SessionID, Reason: m.DeadLetterReason,
				Description: m.DeadLetterDescription, Deliveries: m.DeliveryCount, Body: string(m.Body)}
		}
		return out, err
	}
	return queue{broker.NewJobSender(b, name), deadLetters, conn{close: func() { b.Close() }, check: func(ctx context.Context) error {
		_, err := b.Counts(ctx, name)
		return err
	}}}
}
