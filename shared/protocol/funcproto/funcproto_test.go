package funcproto

import (
	"bytes"
	"encoding/json"
	"os"
	"strings"
	"testing"
	"time"
)

func load(t *testing.T, name string) *InvokeRequest {
	t.Helper()
	data, err := os.ReadFile("testdata/" + name)
	if err != nil {
		t.Fatal(err)
	}
	req, err := DecodeRequest(bytes.NewReader(data))
	if err != nil {
		t.Fatal(err)
	}
	return req
}

// plain re-encodes a request with every JSON-in-a-string value unwrapped: the other form the decoders
// must accept.
func plain(t *testing.T, req *InvokeRequest) *InvokeRequest {
	out := &InvokeRequest{Data: map[string]json.RawMessage{}, Metadata: map[string]json.RawMessage{}}
	for k, v := range req.Data {
		out.Data[k] = Unwrap(v)
	}
	for k, v := range req.Metadata {
		out.Metadata[k] = Unwrap(v)
	}
	return out
}

func TestDecodeEventHubBatchBothForms(t *testing.T) {
	req := load(t, "eventhub-many.json")
	for name, r := range map[string]*InvokeRequest{"double-encoded": req, "plain": plain(t, req)} {
		b, err := DecodeEventHubBatch(r, "events")
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if len(b.Events) != 2 || string(b.Events[0].Body) != `{"group":"g1","seq":1}` || b.Events[1].SequenceNumber != 18 ||
			b.Events[0].Offset != "4294967296" || b.Events[1].PartitionKey != "g1" || b.Partition.PartitionID != "1" ||
			b.Partition.ConsumerGroup != "apply" || b.Events[0].Properties["kind"] != "batch" ||
			!b.Events[1].EnqueuedTime.Equal(time.Date(2026, 11, 20, 10, 0, 0, 456e6, time.UTC)) {
			t.Fatalf("%s: decoded %+v", name, b)
		}
	}
}

func TestDecodeServiceBusMessageBothForms(t *testing.T) {
	req := load(t, "servicebus-session.json")
	for name, r := range map[string]*InvokeRequest{"double-encoded": req, "plain": plain(t, req)} {
		m, err := DecodeServiceBusMessage(r, "job")
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if !strings.HasPrefix(string(m.Body), `{"job":"0123456789abcdef0123456789abcdef"`) || m.MessageID != "0123456789abcdef0123456789abcdef-3" ||
			m.SessionID != "g1" || m.DeliveryCount != 2 || m.ApplicationProperties["step"] != "start" ||
			!m.EnqueuedTime.Equal(time.Date(2026, 11, 20, 10, 0, 0, 0, time.UTC)) {
			t.Fatalf("%s: decoded %+v (body %s)", name, m, m.Body)
		}
	}
}

func TestDecodeTimer(t *testing.T) {
	timer, err := DecodeTimer(load(t, "timer.json"), "timer")
	if err != nil || timer.IsPastDue || timer.ScheduleStatus == nil || !timer.ScheduleStatus.Next.Equal(time.Date(2026, 11, 20, 10, 1, 0, 0, time.UTC)) {
		t.Fatalf("timer = %+v, %v", timer, err)
	}
	timer, err = DecodeTimer(load(t, "timer-nomonitor.json"), "timer")
	if err != nil || timer.ScheduleStatus != nil || !timer.Schedule.AdjustForDST {
		t.Fatalf("timer without a monitor = %+v, %v", timer, err)
	}
}

// A retried batch carries the host's exception as an object; the first attempt a RetryContext too.
func TestDecodeEventHubRetries(t *testing.T) {
	b, err := DecodeEventHubBatch(load(t, "eventhub-many-retry.json"), "events")
	if err != nil || b.Retry == nil || b.Retry.RetryCount != 2 || b.Retry.MaxRetryCount != 8 || len(b.Events) != 1 ||
		!b.Events[0].EnqueuedTime.Equal(time.Date(2026, 11, 20, 10, 0, 0, 100e6, time.UTC)) {
		t.Fatalf("retried batch = %+v, %v", b, err)
	}
	if b, err := DecodeEventHubBatch(load(t, "eventhub-many.json"), "events"); err != nil || b.Retry == nil || b.Retry.RetryCount != 0 {
		t.Fatalf("first attempt = %+v, %v", b, err)
	}
}

// Every time form the host writes decodes, zone-less ones as UTC; anything else is a precise error.
func TestHostTimeForms(t *testing.T) {
	want := time.Date(2026, 11, 20, 10, 0, 0, 0, time.UTC)
	for _, s := range []string{"2026-11-20T10:00:00", "2026-11-20T10:00:00.0000000", "2026-11-20T10:00:00+00:00", "2026-11-20T10:00:00Z",
		"2026-11-20T11:00:00+01:00", `"2026-11-20T10:00:00"`} {
		got, err := Time(json.RawMessage(`"` + strings.ReplaceAll(s, `"`, `\"`) + `"`))
		if err != nil || !got.Equal(want) {
			t.Errorf("%s: %v, %v", s, got, err)
		}
	}
	if _, err := Time(json.RawMessage(`"20/11/2026 10:00:00"`)); err == nil || !strings.Contains(err.Error(), "not a time the Functions host writes") {
		t.Errorf("a culture's G format: %v", err)
	}
}

func TestMalformedInvocationsNameTheProblem(t *testing.T) {
	cases := []struct{ body, want string }{
		{`{"Data":`, "not a JSON invocation request"},
		{`[]`, "not a JSON invocation request"},
		{`{"Metadata":{}}`, "no Data object"},
		{`{"Data":{}} {}`, "trailing data"},
	}
	for _, c := range cases {
		if _, err := DecodeRequest(strings.NewReader(c.body)); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("DecodeRequest(%s) = %v, want %q", c.body, err, c.want)
		}
	}
	shape := []struct{ body, want string }{
		{`{"Data":{}}`, "Data.events is missing"},
		{`{"Data":{"events":"{\"a\":1}"}}`, "Data.events: expected an array"},
		{`{"Data":{"events":"[\"a\"]"},"Metadata":{"SequenceNumberArray":"[1,2]"}}`, "Metadata.SequenceNumberArray has 2 entries for 1 events"},
		{`{"Data":{"events":"[\"a\"]"},"Metadata":{"SequenceNumberArray":"[\"x\"]"}}`, "Metadata.SequenceNumberArray[0]: expected an integer"},
		{`{"Data":{"events":"[\"a\"]"},"Metadata":{"EnqueuedTimeUtcArray":"[\"yesterday\"]"}}`, "Metadata.EnqueuedTimeUtcArray[0]"},
	}
	for _, c := range shape {
		req, err := DecodeRequest(strings.NewReader(c.body))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := DecodeEventHubBatch(req, "events"); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("DecodeEventHubBatch(%s) = %v, want %q", c.body, err, c.want)
		}
	}
}

func FuzzDecodeRequest(f *testing.F) {
	for _, name := range []string{"eventhub-many.json", "eventhub-many-retry.json", "servicebus-session.json", "timer.json", "timer-nomonitor.json"} {
		data, _ := os.ReadFile("testdata/" + name)
		f.Add(data)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		req, err := DecodeRequest(bytes.NewReader(data))
		if err != nil {
			return
		}
		// None of the trigger decoders may panic on any request that parses.
		DecodeEventHubBatch(req, "events")
		DecodeServiceBusMessage(req, "job")
		DecodeTimer(req, "timer")
	})
}
