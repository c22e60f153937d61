package funcproto

import (
	"encoding/json"
	"fmt"
	"time"
)

// PartitionContext is Metadata.PartitionContext of an Event Hubs invocation.
type PartitionContext struct {
	ConsumerGroup           string `json:"ConsumerGroup"`
	EventHubName            string `json:"EventHubName"`
	FullyQualifiedNamespace string `json:"FullyQualifiedNamespace"`
	PartitionID             string `json:"PartitionId"`
}

// EventHubEvent is one event of a batch with its system metadata.
type EventHubEvent struct {
	Body           []byte
	SequenceNumber int64
	Offset         string
	EnqueuedTime   time.Time
	PartitionKey   string
	Properties     map[string]any
}

// EventHubBatch is a decoded Event Hubs trigger invocation (cardinality many).
type EventHubBatch struct {
	Partition PartitionContext
	Events    []EventHubEvent
	// RetryCount is RetryContext.RetryCount when the host retries the batch under a retry policy.
	RetryCount int
}

// RetryContext is Metadata.RetryContext, present on retried invocations.
type RetryContext struct {
	RetryCount    int `json:"RetryCount"`
	MaxRetryCount int `json:"MaxRetryCount"`
}

// DecodeEventHubBatch decodes the trigger named binding of an Event Hubs invocation.
func DecodeEventHubBatch(req *InvokeRequest, binding string) (*EventHubBatch, error) {
	raw, ok := req.Data[binding]
	if !ok {
		return nil, fmt.Errorf("Data.%s is missing", binding)
	}
	items, err := Array[json.RawMessage](raw)
	if err != nil {
		return nil, fmt.Errorf("Data.%s: %w", binding, err)
	}
	batch := &EventHubBatch{Events: make([]EventHubEvent, len(items))}
	for i, item := range items {
		body, err := Body(item)
		if err != nil {
			return nil, fmt.Errorf("Data.%s[%d]: %w", binding, i, err)
		}
		batch.Events[i].Body = body
	}
	if raw, ok := req.Metadata["PartitionContext"]; ok {
		if err := Object(raw, &batch.Partition); err != nil {
			return nil, fmt.Errorf("Metadata.PartitionContext: %w", err)
		}
	}
	if raw, ok := req.Metadata["RetryContext"]; ok {
		var rc RetryContext
		if err := Object(raw, &rc); err != nil {
			return nil, fmt.Errorf("Metadata.RetryContext: %w", err)
		}
		batch.RetryCount = rc.RetryCount
	}
	if err := fillArray(req, "SequenceNumberArray", batch.Events, func(e *EventHubEvent, v json.RawMessage) error {
		n, err := Int(v)
		e.SequenceNumber = n
		return err
	}); err != nil {
		return nil, err
	}
	if err := fillArray(req, "OffsetArray", batch.Events, func(e *EventHubEvent, v json.RawMessage) error {
		s, err := String(v)
		e.Offset = s
		return err
	}); err != nil {
		return nil, err
	}
	if err := fillArray(req, "PartitionKeyArray", batch.Events, func(e *EventHubEvent, v json.RawMessage) error {
		s, err := String(v)
		e.PartitionKey = s
		return err
	}); err != nil {
		return nil, err
	}
	if err := fillArray(req, "EnqueuedTimeUtcArray", batch.Events, func(e *EventHubEvent, v json.RawMessage) error {
		s, err := String(v)
		if err != nil || s == "" {
			return err
		}
		t, err := time.Parse(time.RFC3339Nano, s)
		e.EnqueuedTime = t
		return err
	}); err != nil {
		return nil, err
	}
	if err := fillArray(req, "PropertiesArray", batch.Events, func(e *EventHubEvent, v json.RawMessage) error {
		if string(v) == "null" {
			return nil
		}
		return json.Unmarshal(v, &e.Properties)
	}); err != nil {
		return nil, err
	}
	return batch, nil
}

// fillArray decodes Metadata[name] (an array aligned with the events) into the events. A missing array
// is fine (the host omits some); one of the wrong length is not.
func fillArray(req *InvokeRequest, name string, events []EventHubEvent, set func(*EventHubEvent, json.RawMessage) error) error {
	raw, ok := req.Metadata[name]
	if !ok {
		return nil
	}
	values, err := Array[json.RawMessage](raw)
	if err != nil {
		return fmt.Errorf("Metadata.%s: %w", name, err)
	}
	if len(values) != len(events) {
		return fmt.Errorf("Metadata.%s has %d entries for %d events", name, len(values), len(events))
	}
	for i := range events {
		if err := set(&events[i], values[i]); err != nil {
			return fmt.Errorf("Metadata.%s[%d]: %w", name, i, err)
		}
	}
	return nil
}

// ServiceBusMessage is a decoded Service Bus trigger invocation.
type ServiceBusMessage struct {
	Body                  []byte
	MessageID             string
	SessionID             string
	DeliveryCount         int64
	EnqueuedTime          time.Time
	ApplicationProperties map[string]any
}

// DecodeServiceBusMessage decodes the trigger named binding of a Service Bus invocation.
func DecodeServiceBusMessage(req *InvokeRequest, binding string) (*ServiceBusMessage, error) {
	raw, ok := req.Data[binding]
	if !ok {
		return nil, fmt.Errorf("Data.%s is missing", binding)
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
		s, err := String(v)
		if err != nil {
			return nil, fmt.Errorf("Metadata.EnqueuedTimeUtc: %w", err)
		}
		if s != "" {
			if msg.EnqueuedTime, err = time.Parse(time.RFC3339Nano, s); err != nil {
				return nil, fmt.Errorf("Metadata.EnqueuedTimeUtc: %w", err)
			}
		}
	}
	if v, ok := req.Metadata["ApplicationProperties"]; ok && string(Unwrap(v)) != "null" {
		if err := Object(v, &msg.ApplicationProperties); err != nil {
			return nil, fmt.Errorf("Metadata.ApplicationProperties: %w", err)
		}
	}
	return msg, nil
}

// TimerInfo is the timer trigger's value.
type TimerInfo struct {
	Schedule struct {
		AdjustForDST bool `json:"AdjustForDST"`
	} `json:"Schedule"`
	ScheduleStatus *struct {
		Last        time.Time `json:"Last"`
		Next        time.Time `json:"Next"`
		LastUpdated time.Time `json:"LastUpdated"`
	} `json:"ScheduleStatus"`
	IsPastDue bool `json:"IsPastDue"`
}

// DecodeTimer decodes the trigger named binding of a timer invocation.
func DecodeTimer(req *InvokeRequest, binding string) (*TimerInfo, error) {
	raw, ok := req.Data[binding]
	if !ok {
		return nil, fmt.Errorf("Data.%s is missing", binding)
	}
	var t TimerInfo
	if err := Object(raw, &t); err != nil {
		return nil, fmt.Errorf("Data.%s: %w", binding, err)
	}
	return &t, nil
}
