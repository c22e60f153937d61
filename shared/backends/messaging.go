package backends

import (
	"context"

	"github.com/standby-dr/standby/shared/apiv1"
	"github.com/standby-dr/standby/shared/azconn"
	"github.com/standby-dr/standby/shared/eventhubs"
	"github.com/standby-dr/standby/shared/local"
	"github.com/standby-dr/standby/shared/replication"
	"github.com/standby-dr/standby/shared/servicebus"
)

// stream is the change stream: Event Hubs, or the embedded broker.
type stream struct {
	publisher replication.ChangePublisher
	check     func(context.Context) error
	close     func()
}

func openStream(getenv func(string) string) (stream, error) {
	hub := orDefault(getenv(SettingHub), "changes")
	s, err := azconn.Lookup(getenv, SettingEventHubs, "")
	if err != nil {
		return stream{}, err
	}
	if local.IsConnection(s.ConnectionString) {
		b, err := local.OpenConnection(s.ConnectionString)
		if err != nil {
			return stream{}, err
		}
		return stream{publisher: local.NewChangePublisher(b, hub), close: func() { b.Close() },
			check: func(ctx context.Context) error {
				_, err := b.PartitionCount(ctx, hub)
				return err
			}}, nil
	}
	p, err := eventhubs.NewPublisher(s, hub)
	if err != nil {
		return stream{}, err
	}
	return stream{publisher: p, close: func() { p.Close(context.Background()) },
		check: func(ctx context.Context) error {
			_, err := p.Properties(ctx)
			return err
		}}, nil
}

// queue is the job queue: Service Bus, or the embedded broker.
type queue struct {
	sender      replication.JobSender
	deadLetters func(ctx context.Context, max int) ([]apiv1.DeadLetterView, error)
	check       func(context.Context) error
	close       func()
}

func openQueue(getenv func(string) string) (queue, error) {
	name := orDefault(getenv(SettingQueue), "jobs")
	s, err := azconn.Lookup(getenv, SettingSB, "")
	if err != nil {
		return queue{}, err
	}
	if local.IsConnection(s.ConnectionString) {
		b, err := local.OpenConnection(s.ConnectionString)
		if err != nil {
			return queue{}, err
		}
		return localQueue(b, name), nil
	}
	client, err := servicebus.NewClient(s)
	if err != nil {
		return queue{}, err
	}
	sender, err := servicebus.NewSender(client, name)
	if err != nil {
		return queue{}, err
	}
	return queue{sender: sender,
		deadLetters: func(ctx context.Context, max int) ([]apiv1.DeadLetterView, error) {
			dls, err := servicebus.PeekDeadLetters(ctx, client, name, max)
			out := make([]apiv1.DeadLetterView, len(dls))
			for i, m := range dls {
				out[i] = apiv1.DeadLetterView{MessageID: m.MessageID, SessionID: m.SessionID, Reason: m.Reason, Description: m.Description,
					Deliveries: int(m.Deliveries), Body: string(m.Body)}
			}
			return out, err
		},
		check: func(ctx context.Context) error {
			_, err := servicebus.PeekDeadLetters(ctx, client, name, 1)
			return err
		},
		close: func() { sender.Close(context.Background()); client.Close(context.Background()) }}, nil
}

func localQueue(b *local.Broker, name string) queue {
	return queue{sender: local.NewJobSender(b, name), close: func() { b.Close() },
		deadLetters: func(ctx context.Context, max int) ([]apiv1.DeadLetterView, error) {
			msgs, err := b.DeadLetters(ctx, name, max)
			out := make([]apiv1.DeadLetterView, len(msgs))
			for i, m := range msgs {
				out[i] = apiv1.DeadLetterView{MessageID: m.MessageID, SessionID: m.SessionID, Reason: m.DeadLetterReason,
					Description: m.DeadLetterDescription, Deliveries: m.DeliveryCount, Body: string(m.Body)}
			}
			return out, err
		},
		check: func(ctx context.Context) error {
			_, err := b.Counts(ctx, name)
			return err
		}}
}
