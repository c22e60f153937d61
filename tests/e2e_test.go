package tests

import (
	"archive/zip"
	"bytes"
	"context"
	"crypto/rand"
	"debug/elf"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/standby-dr/standby/shared/protocol/funcproto"
	"github.com/standby-dr/standby/shared/replication"
	"github.com/standby-dr/standby/shared/standin/broker"
	"github.com/standby-dr/standby/shared/testkit/testenv"
)

func execOutput(name string, args ...string) (string, error) {
	out, err := exec.Command(name, args...).CombinedOutput()
	return string(out), err
}

// The four functions invoked through their real trigger paths: a group enabled through the API, the
// agent library's batches through the journal and the change stream to apply (with a malformed event
// quarantined and duplicates skipped), a failover request through the API and the job queue to
// failover, the timer to cutpoints, health through the HTTP front door with its key check.
func TestFunctionsThroughTheirTriggers(t *testing.T) {
	env := newStack(t, "*/2 * * * * *")
	app := env.app
	group := testenv.Unique("g")
	status, _, body := app.call(t, "PUT", "/api/v1/groups/"+group, "test-key",
		`{"vms":[{"name":"vm1","disks":[{"name":"d0","sizeBytes":4194304,"source":"agent"}]}],"policy":{"crashConsistentIntervalSeconds":60}}`)
	if status != http.StatusCreated {
		t.Fatalf("PUT group: %d %s", status, body)
	}
	a := env.agent(t, group, []replication.DiskRefSpec{{Key: "vm1/d0", VM: "vm1", Spec: replication.DiskSpec{Name: "d0", SizeBytes: 4 << 20, Source: "agent"}}})
	for i := 0; i < 8; i++ {
		if err := a.Write("vm1/d0", int64(i)*65536, bytes.Repeat([]byte{byte(i + 1)}, 65536)); err != nil {
			t.Fatal(err)
		}
	}
	marker := a.Marker("crash", true)
	if err := a.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	br := app.broker(t)
	// A malformed event and a duplicate of the marker's descriptor.
	if _, err := br.Publish(context.Background(), "changes", group, []broker.Event{{Body: []byte(`{"group":"x"`)},
		{Body: []byte(fmt.Sprintf(`{"group":%q,"seq":%d,"kind":"marker","consistency":"crash","sourceTime":"2026-01-01T00:00:00Z"}`, group, marker))}}); err != nil {
		t.Fatal(err)
	}
	var view struct {
		State      string `json:"state"`
		Watermark  int64  `json:"watermark"`
		LastMarker struct {
			Seq int64 `json:"seq"`
		} `json:"lastMarker"`
	}
	waitFor(t, 20*time.Second, "the watermark to reach the marker", func() bool {
		_, _, body := app.call(t, "GET", "/api/v1/groups/"+group, "test-key", "")
		json.Unmarshal([]byte(body), &view)
		return view.Watermark == marker
	})
	if view.State != "Protected" || view.LastMarker.Seq != marker {
		t.Fatalf("group view %+v", view)
	}
	waitFor(t, 10*time.Second, "the malformed event to be quarantined", func() bool {
		return strings.Contains(app.out.String(), "quarantined event")
	})

	// A test failover to the newest point, through the API and the job queue, step by step.
	waitFor(t, 20*time.Second, "a recovery point", func() bool {
		_, _, body := app.call(t, "GET", "/api/v1/groups/"+group, "test-key", "")
		return strings.Contains(body, `"lastRecoveryPoint"`)
	})
	status, header, body := app.call(t, "POST", "/api/v1/groups/"+group+"/failover", "test-key", `{"type":"test","recoveryPoint":"latestProcessed"}`)
	if status != http.StatusAccepted || !strings.HasPrefix(header.Get("Location"), "/api/v1/jobs/") {
		t.Fatalf("POST failover: %d %s", status, body)
	}
	var job struct {
		State  string            `json:"state"`
		Group  string            `json:"group"`
		Point  string            `json:"point"`
		Result map[string]string `json:"result"`
		Steps  []struct {
			Name  string `json:"name"`
			State string `json:"state"`
		} `json:"steps"`
	}
	waitFor(t, 30*time.Second, "the test failover job to succeed", func() bool {
		_, _, body := app.call(t, "GET", header.Get("Location"), "test-key", "")
		json.Unmarshal([]byte(body), &job)
		return job.State == "Succeeded" || job.State == "Failed"
	})
	if job.State != "Succeeded" || job.Group != group || job.Point != replication.PointID(marker) || len(job.Steps) != 8 ||
		job.Result["container"] != group+"-test" {
		t.Fatalf("job = %+v", job)
	}
	if status, _, body := app.call(t, "POST", "/api/v1/groups/"+group+"/failover", "test-key", `{"type":"test"}`); status != 409 ||
		!strings.Contains(body, "is active: clean it up first") {
		t.Fatalf("a second test failover: %d %s", status, body)
	}
	status, header, _ = app.call(t, "POST", "/api/v1/groups/"+group+"/cleanup-test-failover", "test-key", "")
	if status != http.StatusAccepted {
		t.Fatalf("cleanup: %d", status)
	}
	waitFor(t, 30*time.Second, "the cleanup job to succeed", func() bool {
		_, _, body := app.call(t, "GET", header.Get("Location"), "test-key", "")
		json.Unmarshal([]byte(body), &job)
		return job.State == "Succeeded"
	})
	if status, _, body := app.call(t, "POST", "/api/v1/groups/nosuchgroup/failover", "test-key", `{"type":"test"}`); status != 404 ||
		!strings.Contains(body, "group nosuchgroup does not exist") {
		t.Fatalf("failover of an unknown group: %d %s", status, body)
	}
	status, header, body = app.call(t, "POST", "/api/v1/groups/"+group+"/failover", "test-key", `{"type":"sideways"}`)
	if status != 400 || header.Get("Content-Type") != "application/problem+json" || !strings.Contains(body, `type \"sideways\": want planned, test or unplanned`) {
		t.Fatalf("invalid failover type: %d %s %s", status, header.Get("Content-Type"), body)
	}
	// A body over the API's limit gets 413 through the host, also while the client is still sending.
	for _, size := range []int{2 << 20, 50 << 20} {
		status, _, body = app.call(t, "PUT", "/api/v1/groups/"+group, "test-key", `{"vms":"`+strings.Repeat("x", size)+`"}`)
		if status != http.StatusRequestEntityTooLarge || !strings.Contains(body, "at most 1048576") {
			t.Fatalf("a %d-byte PUT: %d %.300s", size, status, body)
		}
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
	cmd := exec.Command(filepath.Join(stagedApp, "bin", "handler"))
	token := rand.Text()
	cmd.Env = []string{fmt.Sprintf("FUNCTIONS_CUSTOMHANDLER_PORT=%d", port), "PATH=" + os.Getenv("PATH"), funcproto.HostTokenSetting + "=" + token}
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
	// The host's own headers and token (funcproto.FrontDoor): without them the handler answers nothing
	// but 403, and to a Host other than its own (a DNS-rebinding page) 421.
	hostHeaders := func(r *http.Request) *http.Request {
		r.Header.Set(funcproto.InvocationIDHeader, uuid.NewString())
		r.Header.Set("User-Agent", "Azure-Functions-Host/4.1037.0")
		return r
	}
	asHost := func(r *http.Request) *http.Request {
		r.Header.Set(funcproto.HostTokenHeader, token)
		return hostHeaders(r)
	}
	rebound := func(r *http.Request) *http.Request {
		r.Host = "rebind.example:" + strconv.Itoa(port)
		return asHost(r)
	}
	wrongToken := func(r *http.Request) *http.Request {
		r.Header.Set(funcproto.HostTokenHeader, token[1:]+"A")
		return hostHeaders(r)
	}
	for _, path := range []string{"/apply", "/failover", "/api/v1/groups/g1?keepData=false"} {
		for _, method := range []string{"POST", "DELETE", "OPTIONS"} {
			for _, c := range []struct {
				name   string
				as     func(*http.Request) *http.Request
				status int
			}{{"nothing of the host's", func(r *http.Request) *http.Request { return r }, 403}, {"the host's headers without its token", hostHeaders, 403},
				{"a wrong token", wrongToken, 403}, {"another Host", rebound, 421}} {
				req, _ := http.NewRequest(method, base+path, strings.NewReader(`{"Data":{}}`))
				resp, err := http.DefaultClient.Do(c.as(req))
				if err != nil {
					t.Fatal(err)
				}
				resp.Body.Close()
				if resp.StatusCode != c.status {
					t.Errorf("%s %s with %s: %d, want %d", method, path, c.name, resp.StatusCode, c.status)
				}
			}
		}
	}
	post := func(path, body string) (int, string) {
		req, _ := http.NewRequest("POST", base+path, strings.NewReader(body))
		resp, err := http.DefaultClient.Do(asHost(req))
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
		{"/failover", `{"Data":{"job":"\"{\\\"job\\\":\\\"j\\\",\\\"step\\\":0}\""}}`, `bad invocation: job message field job: "j" is not a job id`},
		{"/failover", `{"Data":{"job":"\"{\\\"job\\\":\\\"0123456789abcdef0123456789abcdef\\\",\\\"group\\\":\\\"g1\\\"}\""}}`, `bad invocation: job message is not valid JSON of the job message shape: json: unknown field "group"`},
		{"/cutpoints", `{"Data":{"timer":"[]"}}`, "bad invocation: Data.timer: expected an object"},
	}
	for _, c := range cases {
		status, logs := post(c.path, c.body)
		if status != 400 || !strings.Contains(logs, c.want) {
			t.Errorf("POST %s %s: %d %q, want 400 with %q", c.path, c.body, status, logs, c.want)
		}
	}
	// The real host's requests (the fixtures, written from its source) decode in the shipped handler: each
	// gets past decoding to the dependency it lacks (500), never a 400.
	for fixture, path := range map[string]string{"eventhub-many.json": "/apply", "eventhub-many-retry.json": "/apply",
		"servicebus-session.json": "/failover", "timer.json": "/cutpoints", "timer-nomonitor.json": "/cutpoints"} {
		body, err := os.ReadFile(filepath.Join("..", "shared", "protocol", "funcproto", "testdata", fixture))
		if err != nil {
			t.Fatal(err)
		}
		if status, logs := post(path, string(body)); status != 500 || !strings.Contains(logs, "not configured") {
			t.Errorf("the host's %s: %d %q, want 500 for the missing storage", fixture, status, logs)
		}
	}
	// A well-formed invocation that needs storage gets 500 with the reason.
	status, logs := post("/apply", `{"Data":{"events":"[]"}}`)
	if status != 500 || !strings.Contains(logs, "apply: target storage or the cache journal is not configured (StandbyTargetStorage, StandbyCacheStorage)") {
		t.Errorf("apply without storage: %d %q", status, logs)
	}
	req, _ := http.NewRequest("GET", base+"/api/v1/health", nil)
	resp, err := http.DefaultClient.Do(asHost(req))
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
	if err == nil || !strings.Contains(out, "events/function.json: retry.maxRetryCount: wrong type") {
		t.Fatalf("devhost with a malformed function.json: %v\n%s", err, out)
	}
	os.WriteFile(filepath.Join(app.dir, "events/function.json"), []byte(eventsFunction), 0o644)
	os.WriteFile(filepath.Join(app.dir, "broker.json"), []byte(`{"queues":[{"name":"jobs","maxDeliveryCount":-1}]}`), 0o644)
	out, err = execOutput(filepath.Join(binDir, "devhost"), "run", "-app", app.dir, "-broker-config", "broker.json")
	if err == nil || !strings.Contains(out, "broker.json: queues[0].maxDeliveryCount: -1 must be at least 1") {
		t.Fatalf("devhost with a malformed broker config: %v\n%s", err, out)
	}
}

// make package stages what Azure deploys: the zip holds host.json, every <function>/function.json at
// its root and a static linux/amd64 bin/handler with its exec bit.
func TestPackageIsWhatTheHostLoads(t *testing.T) {
	checkAppZip(t, filepath.Join(filepath.Dir(stagedApp), "standby-app.zip"))
}

// checkAppZip checks a deployable zip as the Functions host loads it: host.json and, for every
// functions/<name>/function.json of the repository, <name>/function.json at the zip's root; nothing
// under functions/ and no local settings; bin/handler with its exec bit, a static x86-64 ELF.
func checkAppZip(t *testing.T, path string) {
	t.Helper()
	zr, err := zip.OpenReader(path)
	if err != nil {
		t.Fatal(err)
	}
	defer zr.Close()
	entries := map[string]*zip.File{}
	for _, f := range zr.File {
		entries[f.Name] = f
	}
	want := []string{"host.json", "bin/handler"}
	functionJSONs, _ := filepath.Glob("../functions/*/function.json")
	for _, fj := range functionJSONs {
		want = append(want, filepath.Base(filepath.Dir(fj))+"/function.json")
	}
	if len(functionJSONs) < 5 {
		t.Fatalf("found %d function.json files under ../functions", len(functionJSONs))
	}
	for _, name := range want {
		if entries[name] == nil {
			t.Errorf("%s: %s is not in the zip (it has %d entries)", path, name, len(entries))
		}
	}
	for name := range entries {
		if strings.HasPrefix(name, "functions/") || name == "local.settings.json" {
			t.Errorf("%s is in the zip: the host loads functions from the root, and local settings never ship", name)
		}
	}
	h := entries["bin/handler"]
	if h == nil {
		return
	}
	if h.Mode()&0o111 == 0 {
		t.Errorf("bin/handler mode %v: no exec bit", h.Mode())
	}
	rc, err := h.Open()
	if err != nil {
		t.Fatal(err)
	}
	data, _ := io.ReadAll(rc)
	rc.Close()
	exe, err := elf.NewFile(bytes.NewReader(data))
	if err != nil {
		t.Fatalf("bin/handler is not an ELF file: %v", err)
	}
	if exe.Machine != elf.EM_X86_64 || exe.Class != elf.ELFCLASS64 {
		t.Errorf("bin/handler is %v %v, want x86-64", exe.Class, exe.Machine)
	}
	for _, p := range exe.Progs {
		if p.Type == elf.PT_INTERP || p.Type == elf.PT_DYNAMIC {
			t.Errorf("bin/handler is dynamically linked (%v): the Functions image may lack its libc", p.Type)
		}
	}
}
