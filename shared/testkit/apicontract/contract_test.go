package apicontract

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/standby-dr/standby/shared/api/apiv1"
)

// The document loads and validates in kin-openapi; a real answer passes, and the same answer with a
// field the document does not name, a missing required field or a wrong type fails. A request body
// passes without the fields that have defaults, and fails with one the API refuses.
func TestAnswersAreCheckedAgainstTheDocument(t *testing.T) {
	c, err := New()
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now().UTC()
	view := apiv1.GroupView{Group: "g1", State: "Protected", VMs: []apiv1.VMSpec{{Name: "vm0", Disks: []apiv1.DiskSpec{{Name: "d", SizeBytes: 1 << 20, Source: "agent"}}}},
		LastPointTime: &now, CreatedAt: now, Capture: []apiv1.Capture{{Disk: "vm0/d", Mode: "agent", CrashConsistent: true}},
		ReplicationState: "continuous", Health: "Healthy"}
	good, _ := json.Marshal(view)
	req, _ := http.NewRequest("GET", "http://x/api/read/v1/groups/g1", nil)
	hdr := http.Header{"Content-Type": {"application/json"}}
	if err := c.Check(req, 200, hdr, good); err != nil {
		t.Fatalf("a real answer: %v", err)
	}
	var m map[string]any
	json.Unmarshal(good, &m)
	for name, change := range map[string]func(map[string]any){
		"an undocumented field":   func(m map[string]any) { m["secretField"] = 1 },
		"a required field gone":   func(m map[string]any) { delete(m, "watermark") },
		"a wrong type":            func(m map[string]any) { m["watermark"] = "7" },
		"a state not in the enum": func(m map[string]any) { m["state"] = "Bogus" },
	} {
		bad := map[string]any{}
		for k, v := range m {
			bad[k] = v
		}
		change(bad)
		body, _ := json.Marshal(bad)
		if err := c.Check(req, 200, hdr, body); err == nil {
			t.Errorf("%s passed", name)
		}
	}
	if err := c.Check(req, 202, hdr, good); err == nil || !strings.Contains(err.Error(), "no 202") {
		t.Errorf("an undocumented status: %v", err)
	}
	problem := []byte(`{"type":"about:blank","title":"not found","status":404,"detail":"no group g2","instance":"/api/v1/groups/g2"}`)
	if err := c.Check(req, 404, http.Header{"Content-Type": {"application/problem+json"}}, problem); err != nil {
		t.Errorf("a problem: %v", err)
	}
	put, _ := http.NewRequest("PUT", "http://x/api/v1/groups/g1", nil)
	if err := c.CheckRequest(put, []byte(`{"vms":[{"name":"web","disks":[{"name":"os","sizeBytes":1048576,"source":"agent"}]}]}`)); err != nil {
		t.Errorf("a spec that leaves out what has defaults: %v", err)
	}
	if err := c.CheckRequest(put, []byte(`{"vms":[],"color":"red"}`)); err == nil {
		t.Error("a spec with a field the API refuses passed")
	}
	// What the API refuses a body without, the document requires: an empty failover request fails.
	failover, _ := http.NewRequest("POST", "http://x/api/v1/groups/g1/failover", nil)
	if err := c.CheckRequest(failover, []byte(`{}`)); err == nil {
		t.Error("a failover request without its type passed")
	}
	if err := c.CheckRequest(failover, []byte(`{"type":"test"}`)); err != nil {
		t.Errorf("a failover request with its type: %v", err)
	}
	if err := c.CheckRequest(failover, []byte(`{"type":"sideways"}`)); err == nil {
		t.Error("a failover request of no type there is passed")
	}
	outside, _ := http.NewRequest("GET", "http://x/api/console/", nil)
	if err := c.Check(outside, 200, http.Header{"Content-Type": {"text/html"}}, []byte("<html>")); err != nil {
		t.Errorf("outside the API: %v", err)
	}
}
