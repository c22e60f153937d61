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
	// RetryCount and MaxRetryCount are Metadata.RetryContext's when the host retries the batch under a
	// retry policy (RetryCount 0 on a first attempt, which carries no RetryContext).
	RetryCount    int
	MaxRetryCount int
}

// RetryContext is Metadata.RetryContext, present on retried invocations.
type RetryContext struct {
	RetryCount    int    `json:"RetryCount"`
	MaxRetryCount int    `json:"MaxRetryCount"`
	Exception     string `json:"Exception,omitempty"`
}

// SystemProperties is one entry of Metadata.SystemPropertiesArray: an event's broker properties, under
// the SDK's names and again under their AMQP names (fields in key order, as a JSON object's keys sort).
type SystemProperties struct {
	EnqueuedTimeUtc    string `json:"EnqueuedTimeUtc"`
	Offset             string `json:"Offset"`
	PartitionKey       string `json:"PartitionKey"`
	SequenceNumber     int64  `json:"SequenceNumber"`
	XOptEnqueuedTime   string `json:"x-opt-enqueued-time"`
	XOptOffset         string `json:"x-opt-offset"`
	XOptPartitionKey   string `json:"x-opt-partition-key"`
	XOptSequenceNumber int64  `json:"x-opt-sequence-number"`
}

// eventArrays are the per-event metadata arrays the decoder reads, in the order it reads them.
var eventArrays = []struct {
	name string
	set  func(*EventHubEvent, json.RawMessage) error
}{
	{"SequenceNumberArray", func(e *EventHubEvent, v json.RawMessage) (err error) {
		e.SequenceNumber, err = Int(v)
		return err
	}},
	{"OffsetArray", setString(func(e *EventHubEvent) *string { return &e.Offset })},
	{"PartitionKeyArray", setString(func(e *EventHubEvent) *string { return &e.PartitionKey })},
	{"EnqueuedTimeUtcArray", func(e *EventHubEvent, v json.RawMessage) (err error) {
		e.EnqueuedTime, err = Time(v)
		return err
	}},
	{"PropertiesArray", func(e *EventHubEvent, v json.RawMessage) error {
		if string(v) == "null" {
			return nil
		}
		return json.Unmarshal(v, &e.Properties)
	}},
}

// setString decodes an array entry with String into the event's field.
func setString(field func(*EventHubEvent) *string) func(*EventHubEvent, json.RawMessage) error {
	return func(e *EventHubEvent, v json.RawMessage) (err error) {
		*field(e), err = String(v)
		return err
	}
}

// DecodeEventHubBatch decodes the trigger named binding of an Event Hubs invocation.
func DecodeEventHubBatch(req *InvokeRequest, binding string) (*EventHubBatch, error) {
	raw, err := data(req, binding)
	if err != nil {
		return nil, err
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
		batch.RetryCount, batch.MaxRetryCount = rc.RetryCount, rc.MaxRetryCount
	}
	for _, a := range eventArrays {
		if err := fillArray(req, a.name, batch.Events, a.set); err != nil {
			return nil, err
		}
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

// NewEventHubRequest is the request the host sends function for batch under trigger binding, the inverse
// of DecodeEventHubBatch: Data the bodies as JSON text of an array of strings (with cardinality one and
// a single event, that body JSON-encoded twice), the per-event metadata arrays as JSON text, and a
// RetryContext when RetryCount is above 0.
func NewEventHubRequest(function, binding string, cardinalityOne bool, batch *EventHubBatch, now time.Time) *InvokeRequest {
	n := len(batch.Events)
	bodies, keys, offsets, times := make([]string, n), make([]string, n), make([]string, n), make([]string, n)
	seqs, props, sys := make([]int64, n), make([]map[string]any, n), make([]SystemProperties, n)
	for i, e := range batch.Events {
		bodies[i], keys[i], offsets[i], seqs[i] = string(e.Body), e.PartitionKey, e.Offset, e.SequenceNumber
		times[i] = timeText(e.EnqueuedTime)
		props[i] = e.Properties
		if props[i] == nil {
			props[i] = map[string]any{}
		}
		sys[i] = SystemProperties{XOptSequenceNumber: e.SequenceNumber, XOptOffset: e.Offset, XOptEnqueuedTime: times[i],
			XOptPartitionKey: e.PartitionKey, SequenceNumber: e.SequenceNumber, Offset: e.Offset, PartitionKey: e.PartitionKey, EnqueuedTimeUtc: times[i]}
	}
	req := newRequest(function, now)
	req.Data[binding] = jsonText(bodies) // cardinality many: a JSON array of strings, itself sent as a string
	if cardinalityOne && n == 1 {
		req.Data[binding] = jsonText(bodies[0])
	}
	req.Metadata["PartitionContext"] = rawJSON(batch.Partition)
	req.Metadata["PartitionKeyArray"] = jsonText(keys)
	req.Metadata["OffsetArray"] = jsonText(offsets)
	req.Metadata["SequenceNumberArray"] = jsonText(seqs)
	req.Metadata["EnqueuedTimeUtcArray"] = jsonText(times)
	req.Metadata["PropertiesArray"] = jsonText(props)
	req.Metadata["SystemPropertiesArray"] = jsonText(sys)
	if batch.RetryCount > 0 {
		req.Metadata["RetryContext"] = rawJSON(RetryContext{RetryCount: batch.RetryCount, MaxRetryCount: batch.MaxRetryCount})
	}
	return req
}
