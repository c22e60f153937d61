package main

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"strconv"
	"time"

	"github.com/standby-dr/standby/shared/local"
)

// The payload builders below produce what the Functions host sends a custom handler, quirks included:
// string values JSON-encoded a second time, and metadata arrays as JSON text inside a string.
// testdata/host-payloads holds the reference shapes they are checked against.

func jsonText(v any) string {
	data, _ := json.Marshal(v)
	return string(data)
}

func randGUID() string {
	var b [16]byte
	rand.Read(b[:])
	h := hex.EncodeToString(b[:])
	return h[0:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:]
}

func sysMetadata(function string, now time.Time) map[string]any {
	return map[string]any{"MethodName": function, "UtcNow": now.UTC().Format(time.RFC3339Nano), "RandGuid": randGUID()}
}

// TimerValue is the timer trigger's value.
type TimerValue struct {
	Schedule       map[string]any `json:"Schedule"`
	ScheduleStatus map[string]any `json:"ScheduleStatus"`
	IsPastDue      bool           `json:"IsPastDue"`
}

func timerPayload(function, binding string, last, next time.Time, pastDue bool, now time.Time) map[string]any {
	v := TimerValue{Schedule: map[string]any{"AdjustForDST": true}, IsPastDue: pastDue,
		ScheduleStatus: map[string]any{"Last": last.UTC().Format(time.RFC3339Nano), "Next": next.UTC().Format(time.RFC3339Nano),
			"LastUpdated": now.UTC().Format(time.RFC3339Nano)}}
	return map[string]any{
		"Data":     map[string]any{binding: v},
		"Metadata": map[string]any{binding: v, "sys": sysMetadata(function, now)},
	}
}

// retryContext is Metadata.RetryContext of a retried invocation.
type retryContext struct {
	RetryCount    int    `json:"RetryCount"`
	MaxRetryCount int    `json:"MaxRetryCount"`
	Exception     string `json:"Exception,omitempty"`
}

func eventHubPayload(function, binding string, b *Binding, namespace string, partition int, events []local.StoredEvent, retry *retryContext, now time.Time) map[string]any {
	bodies := make([]string, len(events))
	keys := make([]string, len(events))
	offsets := make([]string, len(events))
	seqs := make([]int64, len(events))
	times := make([]string, len(events))
	props := make([]map[string]string, len(events))
	sys := make([]map[string]any, len(events))
	for i, e := range events {
		bodies[i] = string(e.Body)
		keys[i] = e.PartitionKey
		offsets[i] = strconv.FormatInt(e.Offset, 10)
		seqs[i] = e.SequenceNumber
		times[i] = e.EnqueuedTime.UTC().Format(time.RFC3339Nano)
		props[i] = e.Properties
		if props[i] == nil {
			props[i] = map[string]string{}
		}
		sys[i] = map[string]any{"x-opt-sequence-number": e.SequenceNumber, "x-opt-offset": offsets[i],
			"x-opt-enqueued-time": times[i], "x-opt-partition-key": e.PartitionKey,
			"SequenceNumber": e.SequenceNumber, "Offset": offsets[i], "PartitionKey": e.PartitionKey, "EnqueuedTimeUtc": times[i]}
	}
	var data any = jsonText(bodies) // cardinality many: a JSON array of strings, itself sent as a string
	if b.Cardinality == "one" && len(bodies) == 1 {
		data = jsonText(bodies[0])
	}
	meta := map[string]any{
		"PartitionContext": map[string]any{"ConsumerGroup": b.ConsumerGroup, "EventHubName": b.EventHubName,
			"FullyQualifiedNamespace": namespace, "PartitionId": strconv.Itoa(partition)},
		"PartitionKeyArray":     jsonText(keys),
		"OffsetArray":           jsonText(offsets),
		"SequenceNumberArray":   jsonText(seqs),
		"EnqueuedTimeUtcArray":  jsonText(times),
		"PropertiesArray":       jsonText(props),
		"SystemPropertiesArray": jsonText(sys),
		"sys":                   sysMetadata(function, now),
	}
	if retry != nil {
		meta["RetryContext"] = retry
	}
	return map[string]any{"Data": map[string]any{binding: data}, "Metadata": meta}
}

func serviceBusPayload(function, binding string, m local.ReceivedMessage, now time.Time) map[string]any {
	props := map[string]any{}
	for k, v := range m.Properties {
		props[k] = v
	}
	meta := map[string]any{
		"MessageId":             jsonText(m.MessageID),
		"SessionId":             jsonText(m.SessionID),
		"DeliveryCount":         m.DeliveryCount,
		"SequenceNumber":        m.SequenceNumber,
		"LockToken":             jsonText(m.LockToken),
		"EnqueuedTimeUtc":       jsonText(m.EnqueuedTime.UTC().Format(time.RFC3339Nano)),
		"ExpiresAtUtc":          jsonText(m.EnqueuedTime.Add(14 * 24 * time.Hour).UTC().Format(time.RFC3339Nano)),
		"LockedUntil":           jsonText(m.LockedUntil.UTC().Format(time.RFC3339Nano)),
		"ContentType":           jsonText(""),
		"ApplicationProperties": props,
		"UserProperties":        props,
		"sys":                   sysMetadata(function, now),
	}
	return map[string]any{"Data": map[string]any{binding: jsonText(string(m.Body))}, "Metadata": meta}
}
