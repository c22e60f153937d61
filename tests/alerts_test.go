package tests

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/standby-dr/standby/shared/api/apiv1"
	"github.com/standby-dr/standby/shared/replication"
	"github.com/standby-dr/standby/shared/testkit/testenv"
)

// alertReceiver is the operator's webhook. It checks every POST's signature with its own HMAC (not
// Standby's Sign) and answers 500 to the first delivery of each alert, so each is retried once.
type alertReceiver struct {
	secret []byte
	mu     sync.Mutex
	posts  map[string]int               // attempts by delivery id
	alerts map[string]replication.Alert // by delivery id, once answered 200
	bad    []string
}

func (rc *alertReceiver) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	mac := hmacSHA256(rc.secret, body)
	rc.mu.Lock()
	defer rc.mu.Unlock()
	id := r.Header.Get("X-Standby-Delivery")
	var a replication.Alert
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	switch err := dec.Decode(&a); {
	case r.Header.Get("X-Standby-Signature") != "sha256="+mac:
		rc.bad = append(rc.bad, "bad signature on "+id)
	case err != nil || a.ID != id || r.Header.Get("Content-Type") != "application/json" || r.Method != http.MethodPost:
		rc.bad = append(rc.bad, fmt.Sprintf("%s %s: %v %s", r.Method, id, err, body))
	}
	if rc.posts[id]++; rc.posts[id] == 1 {
		http.Error(w, "receiver down", http.StatusInternalServerError)
		return
	}
	rc.alerts[id] = a
}

// delivered are the group's alerts answered 200 of a kind (and health level), and their attempts.
// (Groups earlier tests left in the same storage raise theirs too.)
func (rc *alertReceiver) delivered(group, kind, health string) (ids []string, attempts []int) {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	for id, a := range rc.alerts {
		if a.Group == group && a.Kind == kind && a.Health == health {
			ids, attempts = append(ids, id), append(attempts, rc.posts[id])
		}
	}
	return ids, attempts
}

// Stop the agent until the group goes Critical, start it again: the webhook receives exactly one
// Critical and one Healthy health alert, each signed, each retried after the receiver's 500, and
// replication keeps its RPO while the alerts are retried.
func TestAlertsReachTheWebhookOncePerChange(t *testing.T) {
	rc := &alertReceiver{secret: []byte("alert-hmac-key"), posts: map[string]int{}, alerts: map[string]replication.Alert{}}
	receiver := httptest.NewServer(rc)
	defer receiver.Close()
	s := defineStack(t, "*/1 * * * * *", testenv.Storage(t, "target"), testenv.Storage(t, "target"), testenv.Storage(t, "source"))
	s.app.setValues(t, map[string]string{"StandbyAlertWebhook": receiver.URL + "/standby?token=t0ken-in-url", "StandbyWebhookSecret": "alert-hmac-key",
		"StandbyWebhookAllowPrivate": "true"})
	s.app.start(t)
	group, state, spec := testenv.Unique("alerts"), t.TempDir(), writeSpec(t, 1, 1)
	setPolicy(t, spec, map[string]int{"crashConsistentIntervalSeconds": 30, "rpoWarningMinutes": 1, "rpoCriticalMinutes": 2})
	args := []string{"-group", group, "-spec", spec, "-state", state, "-workload-rate", "2", "-duration", "10m"}
	p := startAgent(t, s, args...)
	view := func() apiv1.GroupView { return s.groupView(t, group) }
	waitFor(t, time.Minute, "the group protected and Healthy", func() bool {
		v := view()
		return replication.State(v.State) == replication.StateProtected && v.Health == replication.HealthHealthy && v.LastPointTime != nil
	})
	p.cmd.Process.Signal(os.Interrupt)
	p.wait(t, 30*time.Second)
	stopped := time.Now()
	waitFor(t, 4*time.Minute, "a Critical health alert, delivered on its second attempt", func() bool {
		ids, _ := rc.delivered(group, replication.AlertHealth, replication.HealthCritical)
		return len(ids) > 0
	})
	t.Logf("Critical %s after the agent stopped", time.Since(stopped).Round(time.Second))
	p = startAgent(t, s, args...)
	restarted := time.Now()
	// While the Healthy alert waits for its retry, replication goes on at its pace.
	var worst float64
	waitFor(t, time.Minute, "a Healthy health alert, delivered on its second attempt", func() bool {
		if v := view(); time.Since(restarted) > 10*time.Second {
			worst = max(worst, v.RPOSeconds)
		}
		ids, _ := rc.delivered(group, replication.AlertHealth, replication.HealthHealthy)
		return len(ids) > 0
	})
	if worst > 5 {
		t.Errorf("RPO reached %.1f s while the receiver failed", worst)
	}
	time.Sleep(3 * time.Second) // a duplicate would come within a timer tick or two
	for _, level := range []string{replication.HealthCritical, replication.HealthHealthy} {
		if ids, attempts := rc.delivered(group, replication.AlertHealth, level); len(ids) != 1 || attempts[0] != 2 {
			t.Errorf("%s alerts %v, attempts %v: want one, delivered on its second attempt", level, ids, attempts)
		}
	}
	rc.mu.Lock()
	if len(rc.bad) > 0 {
		t.Errorf("the receiver refused: %v", rc.bad)
	}
	rc.mu.Unlock()
	_, _, body := s.app.call(t, "GET", "/api/v1/groups/"+group+"/events", "test-key", "")
	if !strings.Contains(body, "health raised (Critical)") || !strings.Contains(body, "health resolved (Informational)") {
		t.Errorf("events: %s", body)
	}
	out := s.app.out.String()
	if !strings.Contains(out, `"msg":"standby alert"`) || !strings.Contains(out, `"alertKind":"health"`) || strings.Contains(out, "t0ken-in-url") {
		t.Errorf("the handler's log must carry the alert records, never the webhook's token:\n%s", lastLines(out, 30))
	}
	var kinds []string
	rc.mu.Lock()
	for _, a := range rc.alerts {
		if a.Group == group {
			kinds = append(kinds, a.Kind+" "+a.Status+" "+a.Health)
		}
	}
	rc.mu.Unlock()
	slices.Sort(kinds)
	t.Logf("alerts delivered: %q", kinds)
	for _, want := range []string{"health raised Warning", "rpo-exceeded raised ", "rpo-exceeded resolved "} {
		if !slices.Contains(kinds, want) {
			t.Errorf("no %q alert delivered", want)
		}
	}
}

// setPolicy sets policy fields of a spec file writeSpec wrote.
func setPolicy(t *testing.T, path string, policy map[string]int) {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var spec map[string]any
	if err := json.Unmarshal(data, &spec); err != nil {
		t.Fatal(err)
	}
	p, _ := spec["policy"].(map[string]any)
	if p == nil {
		p = map[string]any{}
	}
	for k, v := range policy {
		p[k] = v
	}
	spec["policy"] = p
	writeJSON(t, path, spec)
}

// hmacSHA256 is the receiver's own check of a webhook body, as its documentation tells an operator to
// compute it: HMAC-SHA256 of the body with the shared secret, hex.
func hmacSHA256(key, body []byte) string {
	m := hmac.New(sha256.New, key)
	m.Write(body)
	return hex.EncodeToString(m.Sum(nil))
}
