// Package eventhubs is the change stream publisher (replication.ChangePublisher) over Azure Event Hubs,
// plus the consumer side the contract tests use against a real namespace.
package eventhubs

import (
	"context"
	"errors"
	"fmt"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/messaging/azeventhubs/v2"
	"github.com/standby-dr/standby/shared/azure/azconn"
	"github.com/standby-dr/standby/shared/replication"
)

// Publisher sends events to one event hub.
type Publisher struct {
	producer *azeventhubs.ProducerClient
}

// NewPublisher connects to the hub named by a resolved connection setting.
func NewPublisher(s azconn.Setting, hub string) (*Publisher, error) {
	p, err := azconn.Connect(s, func(cs string) (*azeventhubs.ProducerClient, error) {
		return azeventhubs.NewProducerClientFromConnectionString(cs, hub, nil)
	}, func(cred azcore.TokenCredential) (*azeventhubs.ProducerClient, error) {
		return azeventhubs.NewProducerClient(s.Namespace, hub, cred, nil)
	})
	if err != nil {
		return nil, fmt.Errorf("event hub %s: %w", hub, err)
	}
	return &Publisher{producer: p}, nil
}

// Publish sends the events in order to the key's partition, in as many batches as the size cap needs.
func (p *Publisher) Publish(ctx context.Context, partitionKey string, events []replication.ChangeEvent) error {
	newBatch := func() (*azeventhubs.EventDataBatch, error) {
		b, err := p.producer.NewEventDataBatch(ctx, &azeventhubs.EventDataBatchOptions{PartitionKey: &partitionKey})
		return b, translate(err, "creating an event batch")
	}
	batch, err := newBatch()
	if err != nil {
		return err
	}
	for i, e := range events {
		ev := &azeventhubs.EventData{Body: e.Body, Properties: map[string]any{}}
		for k, v := range e.Properties {
			ev.Properties[k] = v
		}
		err := batch.AddEventData(ev, nil)
		if errors.Is(err, azeventhubs.ErrEventDataTooLarge) && batch.NumEvents() > 0 {
			if err := translate(p.producer.SendEventDataBatch(ctx, batch, nil), "sending events"); err != nil {
				return err
			}
			if batch, err = newBatch(); err != nil {
				return err
			}
			err = batch.AddEventData(ev, nil)
		}
		if errors.Is(err, azeventhubs.ErrEventDataTooLarge) {
			return fmt.Errorf("event %d of %d bytes exceeds the event hub's limit: %w", i, len(e.Body), replication.ErrTooLarge)
		}
		if err != nil {
			return translate(err, "adding an event")
		}
	}
	if batch.NumEvents() == 0 {
		return nil
	}
	return translate(p.producer.SendEventDataBatch(ctx, batch, nil), "sending events")
}

// Close closes the AMQP connection.
func (p *Publisher) Close(ctx context.Context) error { return p.producer.Close(ctx) }

// Properties returns the hub's partition ids (used by the health check).
func (p *Publisher) Properties(ctx context.Context) ([]string, error) {
	props, err := p.producer.GetEventHubProperties(ctx, nil)
	if err != nil {
		return nil, translate(err, "reading event hub properties")
	}
	return props.PartitionIDs, nil
}

func translate(err error, what string) error {
	if err == nil {
		return nil
	}
	var ehErr *azeventhubs.Error
	if errors.As(err, &ehErr) {
		switch ehErr.Code {
		case azeventhubs.ErrorCodeUnauthorizedAccess:
			return fmt.Errorf("%s: %w: %v", what, replication.ErrInvalid, err)
		case azeventhubs.ErrorCodeConnectionLost:
			return fmt.Errorf("%s: %w: %v", what, replication.ErrUnavailable, err)
		}
	}
	return azconn.Translate(err, what)
}

var _ replication.ChangePublisher = (*Publisher)(nil)
