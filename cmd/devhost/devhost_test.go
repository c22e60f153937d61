package main

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/standby-dr/standby/shared/protocol/funcproto"
	"github.com/standby-dr/standby/shared/standin/broker"
)

// copyApp copies the repository's function app (host.json, function.json files, local settings) into
// a temporary directory where a test can break one file.
func copyApp(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	copyFile := func(src, dst string) {
		data, err := os.ReadFile(src)
		if err != nil {
			t.Fatal(err)
		}
		os.MkdirAll(filepath.Dir(dst), 0o755)
		if err := os.WriteFile(dst, data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	copyFile("../../host.json", filepath.Join(dir, "host.json"))
	copyFile("../../infra/local/local.settings.json", filepath.Join(dir, "local.settings.json"))
	files, _ := filepath.Glob("../../functions/*/function.json")
	for _, f := range files {
		copyFile(f, filepath.Join(dir, filepath.Base(filepath.Dir(f)), "function.json"))
	}
	return dir
}

func TestLoadsTheRepositoryApp(t *testing.T) {
	app, err := LoadApp(copyApp(t), "", nil)
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	for _, fn := range app.Functions {
		got[fn.Name] = fn.Trigger.Type
	}
	want := map[string]string{"agentapi": "httpTrigger", "api": "httpTrigger", "apply": "eventHubTrigger", "cutpoints": "timerTrigger",
		"failover": "serviceBusTrigger", "reader": "httpTrigger", "peer": "httpTrigger", "identity": "httpTrigger",
		"alerts": "timerTrigger", "console": "httpTrigger"}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("functions = %v, want %v", got, want)
	}
	for _, fn := range app.Functions {
		if fn.Name == "apply" && (fn.Trigger.EventHubName != "changes" || fn.Trigger.ConsumerGroup != "apply" || fn.Retry == nil) {
			t.Fatalf("apply binding not expanded: %+v", fn.Trigger)
		}
	}
}

func TestBadConfigNamesFileAndField(t *testing.T) {
	cases := []struct {
		file, from, to, want string
	}{
		{"host.json", `"version": "2.0"`, `"version": "1.0"`, `host.json: version: "1.0", want "2.0"`},
		{"host.json", `"defaultExecutablePath": "bin/handler",`, ``, "host.json: customHandler.description.defaultExecutablePath: missing"},
		{"host.json", `"maxEventBatchSize": 64`, `"maxEventBatchSize": 0.5`, "host.json: extensions.eventHubs.maxEventBatchSize: wrong type"},
		{"host.json", `"maxAutoLockRenewalDuration": "00:10:00"`, `"maxAutoLockRenewalDuration": "ten minutes"`, "host.json: extensions.serviceBus.maxAutoLockRenewalDuration"},
		{"host.json", `"version": "2.0",`, `"version": "2.0"`, "host.json: line 3: invalid JSON"},
		{"apply/function.json", `"eventHubName": "%StandbyChangeHub%",`, ``, "apply/function.json: bindings[0].eventHubName: missing"},
		{"apply/function.json", `%StandbyChangeHub%`, `%NoSuchSetting%`, "apply/function.json: bindings[0].eventHubName: refers to app setting %NoSuchSetting%"},
		{"apply/function.json", `"exponentialBackoff"`, `"sometimes"`, `apply/function.json: retry.strategy: "sometimes"`},
		{"apply/function.json", `"cardinality": "many"`, `"cardinality": "all"`, `bindings[0].cardinality: "all", want one or many`},
		{"api/function.json", `"authLevel": "function"`, `"authLevel": "secret"`, `api/function.json: bindings[0].authLevel: "secret"`},
		{"failover/function.json", `"queueName": "%StandbyJobQueue%",`, ``, "failover/function.json: bindings[0].queueName: missing"},
		{"local.settings.json", `"STANDBY_LOG_LEVEL": "info"`, `"STANDBY_LOG_LEVEL": 3`, "local.settings.json: Values.STANDBY_LOG_LEVEL: must be a string"},
		{"local.settings.json", `"IsEncrypted": false`, `"IsEncrypted": true`, "local.settings.json: IsEncrypted"},
	}
	for _, c := range cases {
		dir := copyApp(t)
		path := filepath.Join(dir, c.file)
		data, _ := os.ReadFile(path)
		if !strings.Contains(string(data), c.from) {
			t.Fatalf("%s does not contain %q", c.file, c.from)
		}
		os.WriteFile(path, []byte(strings.Replace(string(data), c.from, c.to, 1)), 0o644)
		if _, err := LoadApp(dir, "", nil); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s with %q: err = %v, want %q", c.file, c.to, err, c.want)
		}
	}
	// A bad schedule in the app setting a timer refers to.
	dir := copyApp(t)
	path := filepath.Join(dir, "local.settings.json")
	data, _ := os.ReadFile(path)
	os.WriteFile(path, []byte(strings.Replace(string(data), `"*/10 * * * * *"`, `"*/10 * * * *"`, 1)), 0o644)
	if _, err := LoadApp(dir, "", nil); err == nil || !strings.Contains(err.Error(), "cutpoints/function.json: bindings[0].schedule") ||
		!strings.Contains(err.Error(), "has 5 fields") {
		t.Errorf("five-field schedule: err = %v", err)
	}
}

func TestNCRONTAB(t *testing.T) {
	at := time.Date(2026, 11, 26, 10, 7, 13, 0, time.UTC)
	cases := []struct{ expr, want string }{
		{"*/10 * * * * *", "2026-11-26T10:07:20Z"},
		{"0 */5 * * * *", "2026-11-26T10:10:00Z"},
		{"0 0 * * * *", "2026-11-26T11:00:00Z"},
		{"30 15 9 * * MON-FRI", "2026-11-27T09:15:30Z"},
		{"0 0 0 1 JAN *", "2027-01-01T00:00:00Z"},
		{"0 0 12 * * 0", "2026-11-29T12:00:00Z"},
		{"5,45 * * * * *", "2026-11-26T10:07:45Z"},
		{"00:00:30", "2026-11-26T10:07:43Z"},
	}
	for _, c := range cases {
		s, err := ParseSchedule(c.expr)
		if err != nil {
			t.Fatalf("%s: %v", c.expr, err)
		}
		if got := s.Next(at).Format(time.RFC3339); got != c.want {
			t.Errorf("Next(%q) = %s, want %s", c.expr, got, c.want)
		}
	}
	for _, bad := range []string{"* * * * *", "61 * * * * *", "*/0 * * * * *", "* * * * FOO *", "5-1 * * * * *", "25:00:00"} {
		if _, err := ParseSchedule(bad); err == nil {
			t.Errorf("ParseSchedule(%q) accepted", bad)
		}
	}
}

// timeLayout names the host's time layout a string is written in ("" when it is no time): zone-less
// (.NET DateTime of kind Unspecified, or through the converter), with an offset (Local, DateTimeOffset)
// or Z (Utc); with a fraction or whole seconds.
var timeLayout = regexp.MustCompile(`^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{1,7})?(Z|[+-]\d\d:\d\d)?$`)

func timeShape(s string) string {
	m := timeLayout.FindStringSubmatch(s)
	if m == nil {
		return ""
	}
	out := "time"
	if m[1] != "" {
		out += ".fraction"
	}
	switch {
	case m[2] == "Z":
		out += "+Z"
	case m[2] != "":
		out += "+offset"
	}
	return out
}

// shape describes a JSON value's structure: object keys, array element shapes, whether a string holds
// JSON text (how the host sends strings, numbers and arrays) and, for times, their layout.
func shape(v any) string {
	switch x := v.(type) {
	case map[string]any:
		keys := make([]string, 0, len(x))
		for k := range x {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		parts := make([]string, len(keys))
		for i, k := range keys {
			parts[i] = k + ":" + shape(x[k])
		}
		return "{" + strings.Join(parts, ",") + "}"
	case []any:
		if len(x) == 0 {
			return "[]"
		}
		return "[" + shape(x[0]) + "]"
	case string:
		if t := timeShape(x); t != "" {
			return t
		}
		var inner any
		if json.Unmarshal([]byte(x), &inner) == nil {
			return "json(" + shape(inner) + ")"
		}
		return "string"
	case float64:
		return "number"
	case bool:
		return "bool"
	case nil:
		return "null"
	}
	return fmt.Sprintf("%T", v)
}

func shapeOf(t *testing.T, v any) string {
	data, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	var generic any
	json.Unmarshal(data, &generic)
	return shape(generic)
}

func fixtureShape(t *testing.T, name string) string {
	data, err := os.ReadFile("../../shared/protocol/funcproto/testdata/" + name)
	if err != nil {
		t.Fatal(err)
	}
	var generic any
	if err := json.Unmarshal(data, &generic); err != nil {
		t.Fatal(err)
	}
	return shape(generic)
}

func TestPayloadsMatchTheHostShapes(t *testing.T) {
	now := time.Date(2026, 11, 20, 10, 0, 0, 512345600, time.UTC)
	enqueued := time.Date(2026, 11, 20, 10, 0, 0, 123e6, time.UTC)
	b := &Binding{Name: "events", EventHubName: "changes", ConsumerGroup: "apply", Cardinality: "many"}
	events := []broker.StoredEvent{
		{SequenceNumber: 17, Offset: 0, EnqueuedTime: enqueued, PartitionKey: "g1", Body: []byte(`{"group":"g1","seq":1}`), Properties: map[string]string{"kind": "batch"}},
		{SequenceNumber: 18, Offset: 64, EnqueuedTime: enqueued, PartitionKey: "g1", Body: []byte(`{"group":"g1","seq":2}`)},
	}
	compare := func(what string, got *funcproto.InvokeRequest, fixture string) {
		t.Helper()
		if g, w := shapeOf(t, got), fixtureShape(t, fixture); g != w {
			t.Errorf("%s: devhost's payload differs from %s\n got %s\nwant %s", what, fixture, g, w)
		}
	}
	compare("Event Hubs, first attempt", eventHubPayload("apply", "events", b, "localhost", 1, events, funcproto.NewRetryContext(0, 8, 0), now), "eventhub-many.json")
	compare("Event Hubs, a retry", eventHubPayload("apply", "events", b, "localhost", 0, events[1:], funcproto.NewRetryContext(2, 8, 500), now), "eventhub-many-retry.json")
	msg := broker.ReceivedMessage{Message: broker.Message{MessageID: "m1", SessionID: "g1", Body: []byte(`{"job":"0123456789abcdef0123456789abcdef","step":3}`),
		Properties: map[string]string{"step": "start"}}, SequenceNumber: 7, LockToken: "t", DeliveryCount: 2, EnqueuedTime: now, LockedUntil: now}
	compare("Service Bus", serviceBusPayload("failover", "job", msg, now), "servicebus-session.json")
	status := &funcproto.ScheduleStatus{Last: now, Next: now.Truncate(time.Minute).Add(time.Minute), LastUpdated: now}
	compare("timer", timerPayload("cutpoints", "timer", status, false, now), "timer.json")
	compare("timer without a monitor", timerPayload("cutpoints", "timer", nil, false, now), "timer-nomonitor.json")
}

// The comparison sees what the host would not send: a time with a Z where the host writes none, a
// count as a number, a key the host leaves out.
func TestPayloadShapesTellTheHostsFormsApart(t *testing.T) {
	for a, b := range map[string]string{
		`{"EnqueuedTimeUtc":"2026-11-20T10:00:00Z"}`:  `{"EnqueuedTimeUtc":"2026-11-20T10:00:00"}`,
		`{"EnqueuedTimeUtc":"2026-11-20T10:00:00.5"}`: `{"EnqueuedTimeUtc":"2026-11-20T10:00:00"}`,
		`{"DeliveryCount":2}`:                         `{"DeliveryCount":"2"}`,
		`{"MessageId":"m1"}`:                          `{"MessageId":"\"m1\""}`,
		`{"sys":{},"timer":{}}`:                       `{"sys":{}}`,
		`{"a":"[\"2026-11-20T10:00:00.1Z\"]"}`:        `{"a":"[\"2026-11-20T10:00:00.1\"]"}`,
	} {
		var x, y any
		json.Unmarshal([]byte(a), &x)
		json.Unmarshal([]byte(b), &y)
		if shape(x) == shape(y) {
			t.Errorf("%s and %s have the same shape %s", a, b, shape(x))
		}
	}
}

func TestRetryPolicy(t *testing.T) {
	r := &Retry{Strategy: "exponentialBackoff", MaxRetryCount: 3, min: time.Second, max: 5 * time.Second}
	var delays []time.Duration
	for i := 1; r.Allows(i); i++ {
		delays = append(delays, r.Delay(i))
	}
	if fmt.Sprint(delays) != "[1s 2s 4s]" {
		t.Fatalf("delays = %v", delays)
	}
	var none *Retry
	if none.Allows(1) {
		t.Fatal("no policy allowed a retry")
	}
	forever := &Retry{Strategy: "fixedDelay", MaxRetryCount: -1, delay: time.Second}
	if !forever.Allows(1000) || forever.Delay(7) != time.Second {
		t.Fatal("maxRetryCount -1 must retry forever at the fixed delay")
	}
}

// The host loads a function from each folder at the app's root that holds a function.json, and from
// nowhere else; a folder name outside its grammar is refused.
func TestFunctionsAreTheFoldersAtTheAppRoot(t *testing.T) {
	dir := copyApp(t)
	os.MkdirAll(filepath.Join(dir, "functions"), 0o755)
	folders, _ := filepath.Glob(filepath.Join(dir, "*", "function.json"))
	for _, fj := range folders {
		name := filepath.Base(filepath.Dir(fj))
		if err := os.Rename(filepath.Join(dir, name), filepath.Join(dir, "functions", name)); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := LoadApp(dir, "", nil); err == nil || !strings.Contains(err.Error(), "no <name>/function.json under") {
		t.Errorf("functions/<name>/function.json loaded: %v", err)
	}
	dir = copyApp(t)
	os.Rename(filepath.Join(dir, "api"), filepath.Join(dir, "2api"))
	if _, err := LoadApp(dir, "", nil); err == nil || !strings.Contains(err.Error(), "'2api' is not a valid function name.") {
		t.Errorf("a folder named 2api: %v", err)
	}
}

// A relative broker path in a settings file named by a relative path is the settings file's folder's,
// made absolute: the handler runs in the app's folder and must open the same broker as the agent.
func TestRelativeBrokerPathsAreAnchoredToTheSettingsFile(t *testing.T) {
	app := copyApp(t)
	work := t.TempDir()
	data, _ := os.ReadFile(filepath.Join(app, "local.settings.json"))
	os.WriteFile(filepath.Join(work, "local.settings.json"), data, 0o644)
	t.Chdir(work)
	loaded, err := LoadApp(app, "local.settings.json", nil)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := loaded.Values["StandbyEventHubs"], "UseEmbeddedBroker=true;Path="+filepath.Join(work, ".local", "broker.db"); got != want {
		t.Fatalf("StandbyEventHubs = %q, want %q", got, want)
	}
}
