package tests

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/standby-dr/standby/shared/testkit/testenv"
)

// App-consistent points: with freeze/thaw hooks on both VMs the agent takes app-consistent markers,
// which become points of kind app whose disks match the ground truth; a hanging pre hook yields no app
// point, thaws every VM, and leaves an event in the group's history.
func TestAppConsistentPointsAndHooks(t *testing.T) {
	s := newStack(t, "*/1 * * * * *")
	dir := t.TempDir()
	hook := func(vm, action string) string { return vm + "=" + action + " " + filepath.Join(dir, vm+".frozen") }

	group, state, truth := testenv.Unique("app"), t.TempDir(), filepath.Join(t.TempDir(), "truth.jsonl")
	p := startAgent(t, s, "-group", group, "-spec", writeSpec(t, 2, 1), "-state", state, "-workload-rate", "2",
		"-duration", "4s", "-truth", truth, "-app-marker-interval", "1s",
		"-pre-hook", hook("vm0", "touch"), "-pre-hook", hook("vm1", "touch"),
		"-post-hook", hook("vm0", "rm -f"), "-post-hook", hook("vm1", "rm -f"))
	p.wait(t, time.Minute)
	verifyGroup(t, s, group, state, truth)
	waitFor(t, 20*time.Second, "an app-consistent point", func() bool {
		_, _, body := s.app.call(t, "GET", "/api/v1/groups/"+group+"/recovery-points?kind=app", "test-key", "")
		var page pointsPage
		json.Unmarshal([]byte(body), &page)
		return len(page.Points) >= 2
	})
	if m, _ := filepath.Glob(filepath.Join(dir, "*.frozen")); len(m) != 0 {
		t.Fatalf("VMs left frozen: %v", m)
	}

	group2, state2 := testenv.Unique("apphang"), t.TempDir()
	p2 := startAgent(t, s, "-group", group2, "-spec", writeSpec(t, 2, 1), "-state", state2, "-workload-rate", "2",
		"-duration", "3s", "-app-marker-interval", "1s", "-hook-timeout", "300ms",
		"-pre-hook", hook("vm0", "touch"), "-pre-hook", "vm1=sleep 30",
		"-post-hook", hook("vm0", "rm -f"), "-post-hook", "vm1=true")
	p2.wait(t, time.Minute)
	_, _, body := s.app.call(t, "GET", "/api/v1/groups/"+group2+"/events", "test-key", "")
	if !strings.Contains(body, `"kind": "app-consistency"`) || !strings.Contains(body, `VM vm1 pre hook \"sleep 30\": timed out after 300ms`) {
		t.Fatalf("events: %s", body)
	}
	_, _, body = s.app.call(t, "GET", "/api/v1/groups/"+group2+"/recovery-points?kind=app", "test-key", "")
	var page pointsPage
	json.Unmarshal([]byte(body), &page)
	if len(page.Points) != 0 {
		t.Fatalf("app points despite a hanging hook: %s", body)
	}
	if m, _ := filepath.Glob(filepath.Join(dir, "*.frozen")); len(m) != 0 {
		t.Fatalf("VMs left frozen after a hanging hook: %v", m)
	}
	os.RemoveAll(dir)
}
