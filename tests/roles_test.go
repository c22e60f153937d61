package tests

import (
	"encoding/json"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/standby-dr/standby/shared/apiv1"
	"github.com/standby-dr/standby/shared/testenv"
)

// agentCall calls the API with an agent key (and no function key).
func agentCall(t *testing.T, s *stack, method, path, agentKey, body string) (int, string) {
	t.Helper()
	req, _ := http.NewRequest(method, strings.TrimSuffix(s.apiBase(), "/api")+path, strings.NewReader(body))
	if agentKey != "" {
		req.Header.Set(apiv1.AgentKeyHeader, agentKey)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(data)
}

// An agent key is bound to its group, on the agent routes only: with it an agent reports and reads
// for its own group, never for another, and no operator route takes it. An agent process holding only
// its group's key replicates the group.
func TestAgentKeysAreBoundToTheirGroup(t *testing.T) {
	s := newStack(t, "*/1 * * * * *")
	a, b := testenv.Unique("rolea"), testenv.Unique("roleb")
	spec := writeSpec(t, 1, 1)
	data, _ := os.ReadFile(spec)
	keys := map[string]string{}
	for _, g := range []string{a, b} {
		if status, _, body := s.app.call(t, "PUT", "/api/v1/groups/"+g, "test-key", string(data)); status != 201 {
			t.Fatalf("PUT %s: %d %s", g, status, body)
		}
		status, _, body := s.app.call(t, "POST", "/api/v1/groups/"+g+"/agent-key", "test-key", "")
		var v apiv1.AgentKeyView
		if status != 200 || json.Unmarshal([]byte(body), &v) != nil || len(v.AgentKey) < 40 {
			t.Fatalf("issuing %s's agent key: %d %s", g, status, body)
		}
		keys[g] = v.AgentKey
	}
	routes := []struct{ method, path, body string }{
		{"GET", "/api/agent/v1/groups/%s", ""},
		{"POST", "/api/agent/v1/groups/%s/agent", `{"seq":0}`},
		{"GET", "/api/agent/v1/groups/%s/disks/vm0/disk0/hashes", ""},
		{"POST", "/api/agent/v1/groups/%s/events", `{"kind":"test","message":"hello"}`},
		{"GET", "/api/agent/v1/groups/%s/stream-key", ""},
	}
	for _, r := range routes {
		path := strings.Replace(r.path, "%s", a, 1)
		for _, c := range []struct {
			key  string
			want int
		}{{keys[a], 200}, {keys[b], 401}, {"", 401}, {"forged", 401}} {
			status, body := agentCall(t, s, r.method, path, c.key, r.body)
			if status != c.want && !(c.want == 200 && status < 300) {
				t.Errorf("%s %s with %q: %d %s, want %d", r.method, path, c.key[:min(len(c.key), 6)], status, body, c.want)
			}
		}
	}
	for _, op := range []struct{ method, path, body string }{
		{"POST", "/api/v1/groups/" + a + "/failover", `{"type":"unplanned"}`},
		{"DELETE", "/api/v1/groups/" + a + "?keepData=false", ""},
		{"PUT", "/api/v1/groups/" + a, string(data)},
		{"GET", "/api/v1/groups", ""},
		{"POST", "/api/v1/groups/" + a + "/agent-key", ""},
		{"PUT", "/api/agent/v1/groups/" + a, string(data)},
		{"DELETE", "/api/agent/v1/groups/" + a, ""},
	} {
		if status, body := agentCall(t, s, op.method, op.path, keys[a], op.body); status < 400 || status >= 500 {
			t.Errorf("an agent key on the operator's %s %s: %d %s", op.method, op.path, status, body)
		}
	}
	// An agent holding only its group's key replicates it.
	cmd := exec.Command(filepath.Join(binDir, "agent"), "run", "-group", a, "-state", t.TempDir(), "-duration", "20s",
		"-marker-interval", "1s", "-source", "vm0/disk0="+strings.TrimPrefix(sourceOf(t, spec), "file:"))
	for _, kv := range s.env() {
		if !strings.HasPrefix(kv, "STANDBY_API_KEY=") {
			cmd.Env = append(cmd.Env, kv)
		}
	}
	cmd.Env = append(cmd.Env, "STANDBY_AGENT_KEY="+keys[a])
	out := &syncBuffer{}
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Process.Kill()
	waitFor(t, 60*time.Second, a+" protected by an agent holding only its key", func() bool {
		_, _, body := s.app.call(t, "GET", "/api/v1/groups/"+a, "test-key", "")
		return strings.Contains(body, `"state": "Protected"`)
	})
}

// sourceOf is the first disk's source in a spec file.
func sourceOf(t *testing.T, spec string) string {
	var sp struct {
		VMs []struct {
			Disks []struct {
				Source string `json:"source"`
			} `json:"disks"`
		} `json:"vms"`
	}
	data, _ := os.ReadFile(spec)
	if json.Unmarshal(data, &sp) != nil || len(sp.VMs) == 0 {
		t.Fatalf("spec %s", spec)
	}
	return sp.VMs[0].Disks[0].Source
}

// A reader's key — a function key of the reader function, which the host accepts for that function
// alone — reads status, points, history, jobs and plans, and nothing else: not a stream key, not an
// operator's route, no write.
func TestReaderKeyOnlyReads(t *testing.T) {
	s := defineStack(t, "*/1 * * * * *", testenv.Storage(t, "target"), testenv.Storage(t, "target"), testenv.Storage(t, "source"))
	s.app.setValues(t, map[string]string{"DevhostFunctionKey__reader": "reader-key"})
	s.app.start(t)
	group := testenv.Unique("reader")
	data, _ := os.ReadFile(writeSpec(t, 1, 1))
	if status, _, body := s.app.call(t, "PUT", "/api/v1/groups/"+group, "test-key", string(data)); status != 201 {
		t.Fatalf("PUT: %d %s", status, body)
	}
	for _, path := range []string{"/api/read/v1/groups", "/api/read/v1/groups/" + group, "/api/read/v1/groups/" + group + "/recovery-points",
		"/api/read/v1/groups/" + group + "/events", "/api/read/v1/plans", "/api/read/v1/health"} {
		if status, _, body := s.app.call(t, "GET", path, "reader-key", ""); status != 200 && !(status == 503 && strings.HasSuffix(path, "health")) {
			t.Errorf("GET %s with the reader's key: %d %s", path, status, body)
		}
	}
	for _, c := range []struct{ method, path string }{
		{"GET", "/api/read/v1/groups/" + group + "/stream-key"}, {"GET", "/api/read/v1/groups/" + group + "/disks/vm0/disk0/hashes"},
		{"GET", "/api/v1/groups"}, {"POST", "/api/v1/groups/" + group + "/failover"}, {"DELETE", "/api/v1/groups/" + group},
		{"POST", "/api/read/v1/groups/" + group + "/resync"},
	} {
		if status, _, body := s.app.call(t, c.method, c.path, "reader-key", `{"type":"unplanned"}`); status < 400 || status >= 500 {
			t.Errorf("%s %s with the reader's key: %d %s", c.method, c.path, status, body)
		}
	}
	if status, _, _ := s.app.call(t, "GET", "/api/v1/groups/"+group, "test-key", ""); status != 200 {
		t.Fatalf("the group after the reader's attempts: %d", status)
	}
}
