package funcproto

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/google/uuid"
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

	SequenceNumber     int64
	LockToken          string
	ExpiresAt          time.Time
	ContentType        string
	SessionLockedUntil time.Time // the session receiver's lock, shown by the message/session actions
	Namespace          string    // the namespace's host name, shown by Client
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

// NewServiceBusRequest is the request the host sends function for msg under trigger binding (a session
// queue's message), the inverse of DecodeServiceBusMessage. The v5 extension's binding data
// (sdk/servicebus/Microsoft.Azure.WebJobs.Extensions.ServiceBus/src/Triggers/ServiceBusTriggerBindingStrategy.cs
// of Azure/azure-sdk-for-net: contract l.77-111, values l.183-210) goes through the host's converter:
// strings JSON-encoded twice, the counts as JSON text ("2"), EnqueuedTimeUtc and ExpiresAtUtc
// (DateTime.DateTime: no zone, whole seconds) and EnqueuedTime and ExpiresAt (DateTimeOffset) as plain
// strings, null values left out, objects (the properties, the SDK's action and client objects) as
// objects. LockedUntil is not in the v5 contract. Last, a body that is a JSON object lends its
// top-level properties to Metadata (Utility.ApplyBindingData, Azure/azure-functions-host@89dc438d,
// src/WebJobs.Script/Utility.cs:392-437, called from WorkerFunctionInvoker.cs:69,189-200): objects as
// objects, other values as strings, replacing same-named keys whatever their case.
func NewServiceBusRequest(function, binding string, msg *ServiceBusMessage, now time.Time) *InvokeRequest {
	props := msg.ApplicationProperties
	if props == nil {
		props = map[string]any{}
	}
	actions := map[string]string{"SessionLockedUntil": hostTime(msg.SessionLockedUntil, layoutLocal)}
	req := newRequest(function, now)
	req.Data[binding] = jsonText(string(msg.Body))
	for name, v := range map[string]json.RawMessage{
		"MessageId":             jsonText(msg.MessageID),
		"SessionId":             jsonText(msg.SessionID),
		"PartitionKey":          jsonText(msg.SessionID), // a partitioned session entity's key is the session
		"DeliveryCount":         jsonText(msg.DeliveryCount),
		"SequenceNumber":        jsonText(msg.SequenceNumber),
		"LockToken":             jsonText(msg.LockToken),
		"EnqueuedTimeUtc":       rawJSON(hostTime(msg.EnqueuedTime, layoutDateTime)),
		"EnqueuedTime":          rawJSON(hostTime(msg.EnqueuedTime, layoutDateTimeOffset)),
		"ExpiresAtUtc":          rawJSON(hostTime(msg.ExpiresAt, layoutDateTime)),
		"ExpiresAt":             rawJSON(hostTime(msg.ExpiresAt, layoutDateTimeOffset)),
		"ApplicationProperties": rawJSON(props),
		"UserProperties":        rawJSON(props),
		"MessageActions":        rawJSON(actions),
		"SessionActions":        rawJSON(actions),
		"MessageReceiver":       rawJSON(actions),
		"MessageSession":        rawJSON(actions),
		"ReceiveActions":        rawJSON(map[string]any{}),
		"Client": rawJSON(map[string]any{"FullyQualifiedNamespace": msg.Namespace, "IsClosed": false, "TransportType": 0,
			"Identifier": msg.Namespace + "-" + uuid.NewString()}),
	} {
		req.Metadata[name] = v
	}
	if msg.ContentType != "" {
		req.Metadata["ContentType"] = jsonText(msg.ContentType)
	}
	applyBodyProperties(req.Metadata, msg.Body)
	return req
}

// applyBodyProperties lends a JSON object body's top-level properties to the metadata, as the host does.
func applyBodyProperties(metadata map[string]json.RawMessage, body []byte) {
	var fields map[string]json.RawMessage
	if json.Unmarshal(body, &fields) != nil {
		return // not a JSON object: nothing to lend
	}
	for name, v := range fields {
		for existing := range metadata {
			if strings.EqualFold(existing, name) {
				delete(metadata, existing)
			}
		}
		switch v = bytes.TrimSpace(v); {
		case len(v) > 0 && v[0] == '[':
			continue // arrays are not lent
		case len(v) > 0 && v[0] == '{':
			metadata[name] = v
		default:
			text, err := String(v)
			if err == nil {
				metadata[name] = jsonText(text)
			}
		}
	}
}
