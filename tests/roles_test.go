package tests

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/standby-dr/standby/shared/api/apiv1"
	"github.com/standby-dr/standby/shared/azure/tables"
	"github.com/standby-dr/standby/shared/recovery"
	"github.com/standby-dr/standby/shared/testkit/testenv"
)

// agentCall calls the API with an agent key (and no function key).
func agentCall(t *testing.T, s *stack, method, path, agentKey, body string) (int, string) {
	t.Helper()
	return callAs(t, s, credential{agentKey: agentKey}, method, path, body)
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
	awaitGroupState(t, s, a, "Protected", 60*time.Second) // by an agent holding only its key
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

// credential is a role's key as a caller holds it: a function key, an agent key, or an Entra
// principal as App Service authentication passes it.
type credential struct {
	name                             string
	functionKey, agentKey, principal string
	plainText                        bool // writes go without Content-Type: application/json (a cross-site form's)
}

// callAs calls the API with a credential.
func callAs(t *testing.T, s *stack, c credential, method, path, body string) (int, string) {
	t.Helper()
	req, _ := http.NewRequest(method, strings.TrimSuffix(s.apiBase(), "/api")+path, strings.NewReader(body))
	if c.functionKey != "" {
		req.Header.Set("x-functions-key", c.functionKey)
	}
	if c.agentKey != "" {
		req.Header.Set(apiv1.AgentKeyHeader, c.agentKey)
	}
	if c.principal != "" {
		req.Header.Set(apiv1.PrincipalHeader, c.principal)
	}
	if method != "GET" && !c.plainText {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(data)
}

// Every route of apiv1.Routes, through every role's door, with every role's credential: a call gets
// past authorization exactly when its door is its credential's and the route allows that role (the
// operator's host key opens every door but the agent's, where only an agent key counts); every other
// call gets 401 or 403 (or the host's 405 for a method the door's function does not take), and the group the refused calls aimed at is unchanged. A reader's key is a
// function key of the reader function, a peer's one of the peer function; the peer reaches only the
// groups it made. At the identity door the credential is an Entra principal as App Service
// authentication passes it, and its app role is its role.
func TestEveryRouteWithEveryRole(t *testing.T) {
	s := defineStack(t, "*/1 * * * * *", testenv.Storage(t, "target"), testenv.Storage(t, "target"), testenv.Storage(t, "source"))
	s.app.setValues(t, map[string]string{"DevhostFunctionKey__reader": "reader-key", "DevhostFunctionKey__peer": "peer-key",
		"StandbyEntraAuth": "true", "WEBSITE_AUTH_ENABLED": "True"})
	s.app.start(t)
	victim, peers, spare := testenv.Unique("victim"), testenv.Unique("peers"), testenv.Unique("spare")
	op := credential{name: "operator", functionKey: "test-key"}
	enable := func(c credential, door, group string) {
		data, _ := os.ReadFile(writeSpec(t, 1, 1))
		if status, body := callAs(t, s, c, "PUT", door+"/groups/"+group, string(data)); status != 201 {
			t.Fatalf("PUT %s through %s: %d %s", group, door, status, body)
		}
	}
	enable(op, "/api/v1", victim)
	enable(op, "/api/v1", spare)
	peer := credential{name: "peer", functionKey: "peer-key"}
	enable(peer, "/api/peer/v1", peers)
	_, keyBody := callAs(t, s, op, "POST", "/api/v1/groups/"+victim+"/agent-key", "")
	var ak apiv1.AgentKeyView
	json.Unmarshal([]byte(keyBody), &ak)
	creds := map[apiv1.Role]credential{apiv1.RoleOperator: op, apiv1.RolePeer: peer, apiv1.RoleReader: {name: "reader", functionKey: "reader-key"},
		apiv1.RoleAgent: {name: "agent", agentKey: ak.AgentKey}}
	_, before := callAs(t, s, op, "GET", "/api/v1/groups/"+victim, "")
	nobody := credential{name: "nobody"}
	calls := 0
	principals := map[apiv1.Role]credential{}
	for name, role := range apiv1.AppRoles {
		doc := `{"auth_typ":"aad","claims":[{"typ":"roles","val":"` + name + `"}]}`
		principals[role] = credential{name: string(role) + " principal", principal: base64.StdEncoding.EncodeToString([]byte(doc))}
	}
	identity := apiv1.Role("identity")
	apiv1.Doors[identity] = apiv1.IdentityDoor
	defer delete(apiv1.Doors, identity)
	for _, rt := range apiv1.Routes {
		for _, door := range append(apiv1.Roles, identity) {
			for _, holder := range append(apiv1.Roles, "") {
				c, ok := creds[holder]
				if door == identity {
					c, ok = principals[holder]
				}
				if !ok {
					c = nobody
				}
				opens := rt.Allows(door) && (holder == door || (holder == apiv1.RoleOperator && door != apiv1.RoleAgent))
				aim := door           // whose calls these are: where allowed ones aim
				if door == identity { // the principal's app role is its role, whichever the route allows
					opens, aim = c.principal != "" && rt.Allows(holder), holder
				}
				group := victim // refused calls aim at the victim with bodies that would act
				body, query := `{"type":"unplanned","recoveryPoint":"latest"}`, "?keepData=false"
				if opens { // allowed calls get past authorization, then stop at validation or act on a spare
					body, query, group = `{"notAField":1}`, "?keepData=maybe", spare
					if aim == apiv1.RolePeer {
						group = peers
					} else if aim == apiv1.RoleAgent || aim == apiv1.RoleReader {
						group = victim // reads and an agent's reports change no data
					}
				}
				path := strings.NewReplacer("{group}", group, "{vm}", "vm0", "{disk}", "disk0", "{plan}", "noplan",
					"{id}", "0123456789abcdef0123456789abcdef").Replace(apiv1.Doors[door] + rt.Path)
				if rt.Method == "DELETE" {
					path += query
				}
				if rt.Path == "/groups/{group}/agent" && opens {
					body = `{"seq":0}`
				}
				status, answer := callAs(t, s, c, rt.Method, path, body)
				calls++
				refused := status == http.StatusUnauthorized || status == http.StatusForbidden || status == http.StatusMethodNotAllowed
				if opens == refused {
					t.Errorf("%s %s with the %s's credential: %d %s; want it %s", rt.Method, path, c.name, status,
						strings.TrimSpace(answer), map[bool]string{true: "let through", false: "refused"}[opens])
				}
			}
		}
	}
	_, after := callAs(t, s, op, "GET", "/api/v1/groups/"+victim, "")
	if before == "" || strings.Count(before, `"state"`) == 0 || groupViewOf(before).State != groupViewOf(after).State {
		t.Errorf("the victim after %d calls: %s, before %s", calls, after, before)
	}
	// The peer reaches only what it made: not the victim, even with a spec the victim already has.
	if status, body := callAs(t, s, peer, "GET", "/api/peer/v1/groups/"+victim, ""); status != http.StatusForbidden {
		t.Errorf("the peer reading an operator's group: %d %s", status, body)
	}
	// ... nor the jobs of groups it did not make: to the peer, an operator's job is not there.
	// (The job is recorded as admission records one; spare has no point for a job to start on.)
	job, err := recovery.NewJob(spare, recovery.JobTestFailover, "latest", time.Now())
	if err == nil {
		_, err = tables.New(testenv.TableService(t, "target")).Insert(context.Background(), recovery.JobsTable, job)
	}
	if err != nil {
		t.Fatal(err)
	}
	if status, body := callAs(t, s, peer, "GET", "/api/peer/v1/jobs/"+job.ID(), ""); status != http.StatusNotFound {
		t.Errorf("the peer reading an operator's job: %d %s", status, body)
	}
	if status, body := callAs(t, s, op, "GET", "/api/v1/jobs/"+job.ID(), ""); status != http.StatusOK {
		t.Errorf("the operator reading its job: %d %s", status, body)
	}
	// A write at the identity door that a page on another site could send with the operator's session
	// cookie and no preflight (no JSON Content-Type, no body) gets 415, and changes nothing.
	sessionOperator := principals[apiv1.RoleOperator]
	sessionOperator.plainText = true
	_, jobsBefore := callAs(t, s, op, "GET", "/api/v1/jobs?group="+spare, "")
	for _, path := range []string{"/groups/" + spare + "/failover", "/groups/" + spare + "/agent-key"} {
		if status, body := callAs(t, s, sessionOperator, "POST", apiv1.IdentityDoor+path, ""); status != http.StatusUnsupportedMediaType {
			t.Errorf("a cross-site form's POST %s at the identity door: %d %s", path, status, body)
		}
	}
	if _, jobsAfter := callAs(t, s, op, "GET", "/api/v1/jobs?group="+spare, ""); jobsAfter != jobsBefore {
		t.Errorf("the refused writes changed the group's jobs: %s, before %s", jobsAfter, jobsBefore)
	}
	t.Logf("%d calls: %d routes × %d doors × %d credentials", calls, len(apiv1.Routes), len(apiv1.Roles)+1, len(apiv1.Roles)+1)
}
