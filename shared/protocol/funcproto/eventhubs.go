package funcproto

import (
	"encoding/json"
	"fmt"
	"strconv"
	"time"
)

// PartitionContext is Metadata.PartitionContext (and TriggerPartitionContext) of an Event Hubs
// invocation: the extension's TriggerPartitionContext object, its public properties in declaration order.
type PartitionContext struct {
	IsCheckpointingAfterInvocation bool   `json:"IsCheckpointingAfterInvocation"`
	FullyQualifiedNamespace        string `json:"FullyQualifiedNamespace"`
	EventHubName                   string `json:"EventHubName"`
	ConsumerGroup                  string `json:"ConsumerGroup"`
	PartitionID                    string `json:"PartitionId"`
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
	// Retry is Metadata.RetryContext: present on every attempt, the first included (RetryCount 0), when
	// the function has a retry policy; nil without one.
	Retry *RetryContext
}

// RetryContext is Metadata.RetryContext. The SDK's retry loop makes it before the first attempt and
// counts up on each retry, with the failure in Exception (Azure/azure-webjobs-sdk@f79ea0bf,
// src/Microsoft.Azure.WebJobs.Host/Executors/FunctionExecutorExtensions.cs:39-49,71-72); the host copies
// it into Metadata as an object (ScriptInvocationContextExtensions.cs:84-96), the RetryContext class's
// public properties included (Instance, State: src/Microsoft.Azure.WebJobs.Host/RetryContext.cs:14-42).
// Exception is a serialised .NET exception (an object) on retries: kept as it came, never interpreted.
type RetryContext struct {
	RetryCount    int             `json:"RetryCount"`
	MaxRetryCount int             `json:"MaxRetryCount"`
	Exception     json.RawMessage `json:"Exception"`
	Instance      json.RawMessage `json:"Instance"`
	State         map[string]any  `json:"State"`
}

// NewRetryContext is the RetryContext of attempt (0: the first) under a policy of maxRetries; a retry
// carries the failure the host saw, an HttpRequestException from EnsureSuccessStatusCode.
func NewRetryContext(attempt, maxRetries, lastStatus int) *RetryContext {
	rc := &RetryContext{RetryCount: attempt, MaxRetryCount: maxRetries, Exception: json.RawMessage("null"), Instance: json.RawMessage("null"), State: map[string]any{}}
	if attempt > 0 {
		// A serialised System.Exception (its ISerializable fields; the exact set is inferred).
		rc.Exception = rawJSON(map[string]any{"ClassName": "System.Net.Http.HttpRequestException",
			"Message": fmt.Sprintf("Response status code does not indicate success: %d.", lastStatus),
			"Data":    nil, "InnerException": nil, "HelpURL": nil, "StackTraceString": nil, "HResult": -2146233088})
	}
	return rc
}

// SystemProperties is one entry of Metadata.SystemPropertiesArray: the event's AMQP system properties,
// then what the extension adds — SequenceNumber, Offset (a number), OffsetString, PartitionKey and
// EnqueuedTimeUtc (kind Unspecified: no zone) (sdk/eventhub/Microsoft.Azure.WebJobs.Extensions.EventHubs/
// src/Triggers/EventHubTriggerBindingStrategy.cs:169-193 of Azure/azure-sdk-for-net).
type SystemProperties struct {
	XOptSequenceNumber int64  `json:"x-opt-sequence-number"`
	XOptOffset         string `json:"x-opt-offset"`
	XOptEnqueuedTime   string `json:"x-opt-enqueued-time"`
	XOptPartitionKey   string `json:"x-opt-partition-key,omitempty"`
	SequenceNumber     int64  `json:"SequenceNumber"`
	Offset             int64  `json:"Offset"`
	OffsetString       string `json:"OffsetString"`
	PartitionKey       string `json:"PartitionKey,omitempty"`
	EnqueuedTimeUtc    string `json:"EnqueuedTimeUtc"`
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
		batch.Retry = &RetryContext{}
		if err := Object(raw, batch.Retry); err != nil {
			return nil, fmt.Errorf("Metadata.RetryContext: %w", err)
		}
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
// of DecodeEventHubBatch. Cardinality many: Data the bodies as JSON text of an array of strings, and per
// event the metadata arrays, each as JSON text (EventHubTriggerBindingStrategy.cs GetBindingData and
// the *Array contract, l.49-135). Cardinality one (and a single event): the body JSON-encoded twice and
// the same values under singular names, each through the host's converter (l.137-154). Both carry
// PartitionContext twice (also as TriggerPartitionContext, l.52,83-84) and, under a retry policy,
// batch.Retry.
func NewEventHubRequest(function, binding string, cardinalityOne bool, batch *EventHubBatch, now time.Time) *InvokeRequest {
	n := len(batch.Events)
	bodies, keys, offsets, times := make([]string, n), make([]*string, n), make([]string, n), make([]string, n)
	seqs, props, sys := make([]int64, n), make([]map[string]any, n), make([]SystemProperties, n)
	for i, e := range batch.Events {
		bodies[i], offsets[i], seqs[i] = string(e.Body), e.Offset, e.SequenceNumber
		if e.PartitionKey != "" {
			keys[i] = &batch.Events[i].PartitionKey
		}
		times[i] = hostTime(e.EnqueuedTime, layoutUnspecified)
		props[i] = e.Properties
		if props[i] == nil {
			props[i] = map[string]any{}
		}
		offset, _ := strconv.ParseInt(e.Offset, 10, 64)
		sys[i] = SystemProperties{XOptSequenceNumber: e.SequenceNumber, XOptOffset: e.Offset, XOptEnqueuedTime: hostTime(e.EnqueuedTime, layoutUTC),
			XOptPartitionKey: e.PartitionKey, SequenceNumber: e.SequenceNumber, Offset: offset, OffsetString: e.Offset,
			PartitionKey: e.PartitionKey, EnqueuedTimeUtc: times[i]}
	}
	req := newRequest(function, now)
	partition := batch.Partition
	partition.IsCheckpointingAfterInvocation = true
	req.Metadata["PartitionContext"] = rawJSON(partition)
	req.Metadata["TriggerPartitionContext"] = req.Metadata["PartitionContext"]
	if batch.Retry != nil {
		req.Metadata["RetryContext"] = rawJSON(batch.Retry)
	}
	if cardinalityOne && n == 1 {
		req.Data[binding] = jsonText(bodies[0])
		e := batch.Events[0]
		if e.PartitionKey != "" {
			req.Metadata["PartitionKey"] = jsonText(e.PartitionKey)
		}
		req.Metadata["Offset"] = jsonText(e.Offset)
		req.Metadata["OffsetString"] = jsonText(e.Offset)
		req.Metadata["SequenceNumber"] = jsonText(e.SequenceNumber)
		req.Metadata["EnqueuedTimeUtc"] = rawJSON(hostTime(e.EnqueuedTime, layoutDateTime))
		req.Metadata["Properties"] = rawJSON(props[0])
		req.Metadata["SystemProperties"] = rawJSON(sys[0])
		return req
	}
	req.Data[binding] = jsonText(bodies) // a JSON array of strings, itself sent as a string
	req.Metadata["PartitionKeyArray"] = jsonText(keys)
	req.Metadata["OffsetArray"] = jsonText(offsets)
	req.Metadata["OffsetStringArray"] = jsonText(offsets)
	req.Metadata["SequenceNumberArray"] = jsonText(seqs)
	req.Metadata["EnqueuedTimeUtcArray"] = jsonText(times)
	req.Metadata["PropertiesArray"] = jsonText(props)
	req.Metadata["SystemPropertiesArray"] = jsonText(sys)
	return req
}
