package tests

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/standby-dr/standby/shared/local"
	"github.com/standby-dr/standby/shared/testenv"
)

func execOutput(name string, args ...string) (string, error) {
	out, err := exec.Command(name, args...).CombinedOutput()
	return string(out), err
}

// The four functions invoked through their real trigger paths: descriptors through the change stream
// to apply (duplicates and malformed events included), a failover request through the API and the job
// queue to failover, the timer to cutpoints, health through the HTTP front door with its key check.
func TestFunctionsThroughTheirTriggers(t *testing.T) {
	target := testenv.Storage(t, "target")
	cache := testenv.Storage(t, "source")
	app := newApp(t, appSpec{handler: "handler",
		functions: map[string]string{"apply": repoFunction(t, "apply"), "failover": repoFunction(t, "failover"),
			"api": repoFunction(t, "api"), "cutpoints": repoFunction(t, "cutpoints")},
		values: map[string]string{"StandbyTargetStorage": target, "StandbyCacheStorage": cache, "StandbyChangeHub": "changes",
			"StandbyApplyConsumerGroup": "apply", "StandbyJobQueue": "jobs", "StandbyCutpointsSchedule": "*/2 * * * * *"},
		broker: local.Config{EventHubs: []local.HubConfig{{Name: "changes", PartitionCount: 4}},
			Queues: []local.QueueConfig{{Name: "jobs", RequiresSession: true, LockDurationSeconds: 30, MaxDeliveryCount: 10}}}})
	app.start(t)
	group := testenv.Unique("g")
	br := app.broker(t)
	ctx := context.Background()
	now := time.Now().UTC().Format(time.RFC3339)
	desc := func(seq int) local.Event {
		return local.Event{Body: []byte(fmt.Sprintf(`{"group":%q,"seq":%d,"kind":"batch","sourceTime":%q,"journal":"%s/%d","bytes":512,"crc64":"0011223344556677"}`, group, seq, now, group, seq))}
	}
	if _, err := br.Publish(ctx, "changes", group, []local.Event{desc(1), desc(2), desc(2), {Body: []byte(`{"group":"x"`)}, desc(3)}); err != nil {
		t.Fatal(err)
	}
	var view struct {
		Watermark   int64 `json:"watermark"`
		Descriptors int64 `json:"descriptors"`
		Recent      []struct {
			Seq int64 `json:"seq"`
		} `json:"recent"`
	}
	waitFor(t, 20*time.Second, "the watermark to reach 3", func() bool {
		status, _, body := app.call(t, "GET", "/api/v1/groups/"+group, "test-key", "")
		json.Unmarshal([]byte(body), &view)
		return status == 200 && view.Watermark == 3
	})
	if view.Descriptors != 3 || len(view.Recent) != 3 || view.Recent[0].Seq != 3 {
		t.Fatalf("group view %+v: want 3 descriptors (the duplicate not counted, the malformed one quarantined)", view)
	}

	status, header, body := app.call(t, "POST", "/api/v1/groups/"+group+"/failover", "test-key", `{"type":"test","recoveryPoint":"latestProcessed"}`)
	if status != http.StatusAccepted || !strings.HasPrefix(header.Get("Location"), "/api/v1/jobs/") {
		t.Fatalf("POST failover: %d %s", status, body)
	}
	var job struct {
		State      string `json:"state"`
		Deliveries int64  `json:"deliveries"`
		Group      string `json:"group"`
	}
	waitFor(t, 20*time.Second, "the job message to reach the failover function", func() bool {
		_, _, body := app.call(t, "GET", header.Get("Location"), "test-key", "")
		json.Unmarshal([]byte(body), &job)
		return job.State == "Received"
	})
	if job.Deliveries != 1 || job.Group != group {
		t.Fatalf("job = %+v", job)
	}

	status, header, body = app.call(t, "POST", "/api/v1/groups/"+group+"/failover", "test-key", `{"type":"sideways"}`)
	if status != 400 || header.Get("Content-Type") != "application/problem+json" || !strings.Contains(body, `type \"sideways\": want test, planned or unplanned`) {
		t.Fatalf("invalid failover type: %d %s %s", status, header.Get("Content-Type"), body)
	}
	status, _, body = app.call(t, "POST", "/api/v1/groups/"+group+"/failover", "test-key", `{"type":"test","extra":1}`)
	if status != 400 || !strings.Contains(body, `unknown field \"extra\"`) {
		t.Fatalf("unknown field: %d %s", status, body)
	}
	if status, _, _ := app.call(t, "GET", "/api/v1/health", "", ""); status != http.StatusUnauthorized {
		t.Fatalf("health without the key: %d, want 401", status)
	}
	if status, _, _ := app.call(t, "GET", "/api/v1/health", "wrong", ""); status != http.StatusUnauthorized {
		t.Fatalf("health with a wrong key: %d, want 401", status)
	}
	status, _, body = app.call(t, "GET", "/api/v1/health", "test-key", "")
	if status != 200 || strings.Count(body, `"reachable": true`) != 5 {
		t.Fatalf("health: %d %s", status, body)
	}
	waitFor(t, 10*time.Second, "a cutpoints timer run", func() bool { return strings.Contains(app.out.String(), "Executed 'cutpoints' (Succeeded") })
}

// The handler starts with no dependency configured, says so in health, and answers malformed
// invocations with 400 and the reason before touching anything.
func TestHandlerWithoutDependenciesAndMalformedInvocations(t *testing.T) {
	port := freePort(t)
	cmd := exec.Command(filepath.Join(binDir, "handler"))
	cmd.Env = []string{fmt.Sprintf("FUNCTIONS_CUSTOMHANDLER_PORT=%d", port), "PATH=" + os.Getenv("PATH")}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { cmd.Process.Kill(); cmd.Wait() }()
	base := fmt.Sprintf("http://127.0.0.1:%d", port)
	waitFor(t, 10*time.Second, "the handler to listen", func() bool {
		c, err := net.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", port))
		if err == nil {
			c.Close()
		}
		return err == nil
	})
	post := func(path, body string) (int, string) {
		resp, err := http.Post(base+path, "application/json", strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var out struct{ Logs []string }
		json.NewDecoder(resp.Body).Decode(&out)
		return resp.StatusCode, strings.Join(out.Logs, "\n")
	}
	cases := []struct{ path, body, want string }{
		{"/apply", `{"Data":`, "malformed invocation: invocation body is not a JSON invocation request"},
		{"/apply", `{"Metadata":{}}`, "malformed invocation: invocation request has no Data object"},
		{"/apply", `{"Data":{"events":"{}"}}`, "bad invocation: Data.events: expected an array"},
		{"/apply", `{"Data":{"events":"[\"a\"]"},"Metadata":{"SequenceNumberArray":"[1,2]"}}`, "bad invocation: Metadata.SequenceNumberArray has 2 entries for 1 events"},
		{"/failover", `{"Data":{"job":"\"{\\\"job\\\":\\\"j\\\",\\\"group\\\":\\\"BAD!\\\",\\\"type\\\":\\\"test\\\"}\""}}`, "bad invocation: job message field group"},
		{"/failover", `{"Data":{"job":"\"{\\\"job\\\":\\\"j\\\",\\\"group\\\":\\\"g1\\\",\\\"type\\\":\\\"test\\\"}\""},"Metadata":{"SessionId":"\"g2\""}}`, `job message for group "g1" arrived in session "g2"`},
		{"/cutpoints", `{"Data":{"timer":"[]"}}`, "bad invocation: Data.timer: expected an object"},
	}
	for _, c := range cases {
		status, logs := post(c.path, c.body)
		if status != 400 || !strings.Contains(logs, c.want) {
			t.Errorf("POST %s %s: %d %q, want 400 with %q", c.path, c.body, status, logs, c.want)
		}
	}
	// A well-formed invocation that needs storage gets 500 with the reason.
	status, logs := post("/apply", `{"Data":{"events":"[]"}}`)
	if status != 500 || !strings.Contains(logs, "target state store is not configured (StandbyTargetStorage)") {
		t.Errorf("apply without storage: %d %q", status, logs)
	}
	resp, err := http.Get(base + "/api/v1/health")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var health struct {
		Status       string `json:"status"`
		Dependencies []struct {
			Name      string `json:"name"`
			Reachable bool   `json:"reachable"`
			Error     string `json:"error"`
		} `json:"dependencies"`
	}
	json.NewDecoder(resp.Body).Decode(&health)
	if resp.StatusCode != 503 || health.Status != "degraded" || len(health.Dependencies) != 5 ||
		!strings.Contains(health.Dependencies[0].Error, "connection setting StandbyTargetStorage is not set") {
		t.Fatalf("health without dependencies: %d %+v", resp.StatusCode, health)
	}
}

// devhost refuses to start on a malformed configuration and names the file and the field.
func TestDevhostRefusesMalformedConfig(t *testing.T) {
	app := newApp(t, appSpec{handler: "testhandler", functions: map[string]string{"events": strings.Replace(eventsFunction, `"maxRetryCount": 3`, `"maxRetryCount": "three"`, 1)},
		broker: faultBroker})
	out, err := execOutput(filepath.Join(binDir, "devhost"), "run", "-app", app.dir, "-broker-config", "broker.json")
	if err == nil || !strings.Contains(out, "functions/events/function.json: retry.maxRetryCount: wrong type") {
		t.Fatalf("devhost with a malformed function.json: %v\n%s", err, out)
	}
	os.WriteFile(filepath.Join(app.dir, "functions/events/function.json"), []byte(eventsFunction), 0o644)
	os.WriteFile(filepath.Join(app.dir, "broker.json"), []byte(`{"queues":[{"name":"jobs","maxDeliveryCount":-1}]}`), 0o644)
	out, err = execOutput(filepath.Join(binDir, "devhost"), "run", "-app", app.dir, "-broker-config", "broker.json")
	if err == nil || !strings.Contains(out, "broker.json: queues[0].maxDeliveryCount: -1 must be at least 1") {
		t.Fatalf("devhost with a malformed broker config: %v\n%s", err, out)
	}
}
