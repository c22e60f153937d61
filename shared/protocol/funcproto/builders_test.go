package funcproto

import (
	"bytes"
	"encoding/json"
	"fmt"
	"testing"
	"time"
)

// roundTrip sends req through JSON and DecodeRequest, as the handler receives it.
func roundTrip(t *testing.T, req *InvokeRequest) *InvokeRequest {
	t.Helper()
	data, err := json.Marshal(req)
	if err != nil {
		t.Fatal(err)
	}
	out, err := DecodeRequest(bytes.NewReader(data))
	if err != nil {
		t.Fatal(err)
	}
	var sys Sys
	if err := json.Unmarshal(out.Metadata["sys"], &sys); err != nil || sys.MethodName == "" || len(sys.RandGuid) != 36 || sys.UtcNow.IsZero() {
		t.Fatalf("Metadata.sys = %s (%v)", out.Metadata["sys"], err)
	}
	return out
}

func TestBuildersRoundTripThroughTheDecoders(t *testing.T) {
	now := time.Date(2026, 11, 20, 10, 0, 0, 123e6, time.FixedZone("x", 3600))
	batch := &EventHubBatch{Partition: PartitionContext{ConsumerGroup: "apply", EventHubName: "changes", FullyQualifiedNamespace: "localhost", PartitionID: "1"},
		Events: []EventHubEvent{
			{Body: []byte(`{"seq":1}`), SequenceNumber: 17, Offset: "0", EnqueuedTime: now.UTC(), PartitionKey: "g1", Properties: map[string]any{"kind": "batch"}},
			{Body: []byte(`plain "text"`), SequenceNumber: 18, Offset: "64", EnqueuedTime: now.UTC(), PartitionKey: "g1"},
		}, Retry: NewRetryContext(2, 5, 500)}
	got, err := DecodeEventHubBatch(roundTrip(t, NewEventHubRequest("apply", "events", false, batch, now)), "events")
	if err != nil {
		t.Fatal(err)
	}
	batch.Events[1].Properties = map[string]any{} // sent as {}
	batch.Partition.IsCheckpointingAfterInvocation = true
	got.Retry, batch.Retry = nil, nil // the exception travels as an object: compared below
	for i := range got.Events {       // the host writes at most seven fraction digits, as does the builder
		batch.Events[i].EnqueuedTime = batch.Events[i].EnqueuedTime.Truncate(100 * time.Nanosecond)
	}
	if fmt.Sprint(got) != fmt.Sprint(batch) {
		t.Fatalf("Event Hubs batch\n got %+v\nwant %+v", got, batch)
	}

	msg := &ServiceBusMessage{Body: []byte(`{"job":"j1"}`), MessageID: "m1", SessionID: "g1", DeliveryCount: 3, EnqueuedTime: now.UTC(),
		ApplicationProperties: map[string]any{"step": "start"}, SequenceNumber: 7, LockToken: "t"}
	gotMsg, err := DecodeServiceBusMessage(roundTrip(t, NewServiceBusRequest("failover", "job", msg, now)), "job")
	if err != nil {
		t.Fatal(err)
	}
	want := *msg
	want.SequenceNumber, want.LockToken = 0, ""                 // sent, not decoded
	want.EnqueuedTime = want.EnqueuedTime.Truncate(time.Second) // the host's converter drops the fraction
	if fmt.Sprint(*gotMsg) != fmt.Sprint(want) {
		t.Fatalf("Service Bus message\n got %+v\nwant %+v", *gotMsg, want)
	}

	timer := TimerInfo{ScheduleStatus: &ScheduleStatus{Last: now, Next: now.Add(time.Minute), LastUpdated: now}, IsPastDue: true}
	timer.Schedule.AdjustForDST = true
	gotTimer, err := DecodeTimer(roundTrip(t, NewTimerRequest("cutpoints", "timer", timer, now)), "timer")
	if err != nil {
		t.Fatal(err)
	}
	if !gotTimer.IsPastDue || !gotTimer.Schedule.AdjustForDST || !gotTimer.ScheduleStatus.Next.Equal(now.Add(time.Minute)) {
		t.Fatalf("timer = %+v", gotTimer)
	}
}

// The retry context's exception travels as the object the host sends on retries.
func TestRetryContextCarriesTheFailure(t *testing.T) {
	var rc map[string]json.RawMessage
	json.Unmarshal(rawJSON(NewRetryContext(1, 8, 500)), &rc)
	if !bytes.Contains(rc["Exception"], []byte(`"ClassName":"System.Net.Http.HttpRequestException"`)) || string(rc["State"]) != "{}" {
		t.Fatalf("retry context = %s", rawJSON(rc))
	}
	json.Unmarshal(rawJSON(NewRetryContext(0, 8, 0)), &rc)
	if string(rc["Exception"]) != "null" || string(rc["RetryCount"]) != "0" {
		t.Fatalf("first attempt's retry context = %s", rawJSON(rc))
	}
}

func TestHTTPResponseStatus(t *testing.T) {
	for value, want := range map[string]int{`{"statusCode":201}`: 201, `{"statusCode":"404"}`: 404, `{"body":"x"}`: 200} {
		var v any
		json.Unmarshal([]byte(value), &v)
		var r HTTPResponse
		DecodeHTTPResponse(v, &r)
		if r.Status() != want {
			t.Errorf("%s: status %d, want %d", value, r.Status(), want)
		}
	}
}
