// Package servicebus is the job queue sender (replication.JobSender) over Azure Service Bus, plus the
// dead-letter reader operators use and the receiver side the contract tests use.
package servicebus

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/messaging/azservicebus"
	"github.com/standby-dr/standby/shared/azure/azconn"
	"github.com/standby-dr/standby/shared/replication"
)

// NewClient connects to the namespace named by a resolved connection setting.
func NewClient(s azconn.Setting) (*azservicebus.Client, error) {
	return azconn.Connect(s, func(cs string) (*azservicebus.Client, error) {
		return azservicebus.NewClientFromConnectionString(cs, nil)
	}, func(cred azcore.TokenCredential) (*azservicebus.Client, error) {
		return azservicebus.NewClient(s.Namespace, cred, nil)
	})
}

// Sender sends job messages to one queue.
type Sender struct {
	sender *azservicebus.Sender
}

// NewSender opens a sender on the queue.
func NewSender(client *azservicebus.Client, queue string) (*Sender, error) {
	s, err := client.NewSender(queue, nil)
	if err != nil {
		return nil, Translate(err, "opening a sender on "+queue)
	}
	return &Sender{sender: s}, nil
}

func toMessage(m replication.JobMessage) *azservicebus.Message {
	msg := &azservicebus.Message{Body: m.Body}
	if m.MessageID != "" {
		msg.MessageID = &m.MessageID
	}
	if m.SessionID != "" {
		msg.SessionID = &m.SessionID
	}
	if len(m.Properties) > 0 {
		msg.ApplicationProperties = map[string]any{}
		for k, v := range m.Properties {
			msg.ApplicationProperties[k] = v
		}
	}
	return msg
}

// Send enqueues the message.
func (s *Sender) Send(ctx context.Context, m replication.JobMessage) error {
	return Translate(s.sender.SendMessage(ctx, toMessage(m), nil), "sending message "+m.MessageID)
}

// Schedule enqueues the message for at and returns its sequence number.
func (s *Sender) Schedule(ctx context.Context, m replication.JobMessage, at time.Time) (int64, error) {
	seqs, err := s.sender.ScheduleMessages(ctx, []*azservicebus.Message{toMessage(m)}, at, nil)
	if err != nil {
		return 0, Translate(err, "scheduling message "+m.MessageID)
	}
	return seqs[0], nil
}

// CancelScheduled withdraws a scheduled message.
func (s *Sender) CancelScheduled(ctx context.Context, seq int64) error {
	return Translate(s.sender.CancelScheduledMessages(ctx, []int64{seq}, nil), fmt.Sprintf("cancelling scheduled message %d", seq))
}

// Close closes the sender.
func (s *Sender) Close(ctx context.Context) error { return s.sender.Close(ctx) }

// DeadLetter is a dead-lettered message as operators see it.
type DeadLetter struct {
	MessageID   string
	SessionID   string
	Reason      string
	Description string
	Deliveries  uint32
	Enqueued    time.Time
	Body        []byte
}

// PeekDeadLetters lists up to max messages of the queue's dead-letter queue without removing them.
func PeekDeadLetters(ctx context.Context, client *azservicebus.Client, queue string, max int) ([]DeadLetter, error) {
	r, err := client.NewReceiverForQueue(queue, &azservicebus.ReceiverOptions{SubQueue: azservicebus.SubQueueDeadLetter})
	if err != nil {
		return nil, Translate(err, "opening the dead-letter queue of "+queue)
	}
	defer r.Close(ctx)
	msgs, err := r.PeekMessages(ctx, max, nil)
	if err != nil {
		return nil, Translate(err, "peeking the dead-letter queue of "+queue)
	}
	out := make([]DeadLetter, len(msgs))
	for i, m := range msgs {
		out[i] = DeadLetter{MessageID: m.MessageID, Deliveries: m.DeliveryCount, Body: m.Body}
		if m.SessionID != nil {
			out[i].SessionID = *m.SessionID
		}
		if m.DeadLetterReason != nil {
			out[i].Reason = *m.DeadLetterReason
		}
		if m.DeadLetterErrorDescription != nil {
			out[i].Description = *m.DeadLetterErrorDescription
		}
		if m.EnqueuedTime != nil {
			out[i].Enqueued = *m.EnqueuedTime
		}
	}
	return out, nil
}

// Translate maps Service Bus errors to the domain's sentinel errors.
func Translate(err error, what string) error {
	if err == nil {
		return nil
	}
	var sbErr *azservicebus.Error
	if errors.As(err, &sbErr) {
		switch sbErr.Code {
		case azservicebus.CodeLockLost:
			return fmt.Errorf("%s: %w: %v", what, replication.ErrLockLost, err)
		case azservicebus.CodeNotFound:
			return fmt.Errorf("%s: %w: %v", what, replication.ErrNotFound, err)
		case azservicebus.CodeConnectionLost, azservicebus.CodeTimeout:
			return fmt.Errorf("%s: %w: %v", what, replication.ErrUnavailable, err)
		case azservicebus.CodeUnauthorizedAccess:
			return fmt.Errorf("%s: %w: %v", what, replication.ErrInvalid, err)
		}
	}
	msg := err.Error()
	switch {
	case strings.Contains(msg, "session-cannot-be-locked") || strings.Contains(msg, "SessionCannotBeLocked"):
		return fmt.Errorf("%s: %w: %v", what, replication.ErrLockLost, err)
	case strings.Contains(msg, "MessageNotFound") || strings.Contains(msg, "message-not-found"):
		return fmt.Errorf("%s: %w: %v", what, replication.ErrNotFound, err)
	case strings.Contains(msg, "MessageSizeExceeded") || strings.Contains(msg, "message-size-exceeded"):
		return fmt.Errorf("%s: %w: %v", what, replication.ErrTooLarge, err)
	}
	return azconn.Translate(err, what)
}

var _ replication.JobSender = (*Sender)(nil)
