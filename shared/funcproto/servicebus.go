package funcproto

import (
	"fmt"
	"time"
)

// ServiceBusMessage is a Service Bus trigger invocation's message. DecodeServiceBusMessage fills Body
// through ApplicationProperties; the delivery fields after them are sent by NewServiceBusRequest (as the
// host sends them) and not decoded.
type ServiceBusMessage struct {
	Body                  []byte
	MessageID             string
	SessionID             string
	DeliveryCount         int64
	EnqueuedTime          time.Time
	ApplicationProperties map[string]any

	SequenceNumber int64
	LockToken      string
	LockedUntil    time.Time
	ExpiresAt      time.Time
	ContentType    string
}

// DecodeServiceBusMessage decodes the trigger named binding of a Service Bus invocation.
func DecodeServiceBusMessage(req *InvokeRequest, binding string) (*ServiceBusMessage, error) {
	raw, err := data(req, binding)
	if err != nil {
		return nil, err
	}
	// A string body is double-encoded by the host; an object body arrives as an object.
	inner := Unwrap(raw)
	body, err := Body(inner)
	if err != nil {
		return nil, fmt.Errorf("Data.%s: %w", binding, err)
	}
	msg := &ServiceBusMessage{Body: body}
	for name, dst := range map[string]*string{"MessageId": &msg.MessageID, "SessionId": &msg.SessionID} {
		if v, ok := req.Metadata[name]; ok {
			if *dst, err = String(v); err != nil {
				return nil, fmt.Errorf("Metadata.%s: %w", name, err)
			}
		}
	}
	if v, ok := req.Metadata["DeliveryCount"]; ok {
		if msg.DeliveryCount, err = Int(v); err != nil {
			return nil, fmt.Errorf("Metadata.DeliveryCount: %w", err)
		}
	}
	if v, ok := req.Metadata["EnqueuedTimeUtc"]; ok {
		if msg.EnqueuedTime, err = Time(v); err != nil {
			return nil, fmt.Errorf("Metadata.EnqueuedTimeUtc: %w", err)
		}
	}
	if v, ok := req.Metadata["ApplicationProperties"]; ok && string(Unwrap(v)) != "null" {
		if err := Object(v, &msg.ApplicationProperties); err != nil {
			return nil, fmt.Errorf("Metadata.ApplicationProperties: %w", err)
		}
	}
	return msg, nil
}

// NewServiceBusRequest is the request the host sends function for msg under trigger binding, the
// inverse of DecodeServiceBusMessage: the body and the string metadata JSON-encoded twice, the counts
// as numbers, the application properties as an object (also under their older name UserProperties).
func NewServiceBusRequest(function, binding string, msg *ServiceBusMessage, now time.Time) *InvokeRequest {
	props := msg.ApplicationProperties
	if props == nil {
		props = map[string]any{}
	}
	req := newRequest(function, now)
	req.Data[binding] = jsonText(string(msg.Body))
	for name, v := range map[string]any{
		"MessageId":             jsonText(msg.MessageID),
		"SessionId":             jsonText(msg.SessionID),
		"DeliveryCount":         msg.DeliveryCount,
		"SequenceNumber":        msg.SequenceNumber,
		"LockToken":             jsonText(msg.LockToken),
		"EnqueuedTimeUtc":       jsonText(timeText(msg.EnqueuedTime)),
		"ExpiresAtUtc":          jsonText(timeText(msg.ExpiresAt)),
		"LockedUntil":           jsonText(timeText(msg.LockedUntil)),
		"ContentType":           jsonText(msg.ContentType),
		"ApplicationProperties": props,
		"UserProperties":        props,
	} {
		req.Metadata[name] = rawJSON(v)
	}
	return req
}
