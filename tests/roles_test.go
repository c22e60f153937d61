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
