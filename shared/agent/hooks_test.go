package agent

import (
	"context"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestAppMarkerHooks(t *testing.T) {
	p := newPipeline(t, 2, 1, 1<<20)
	a, _ := p.openAgent(t.TempDir())
	defer a.Close(context.Background())
	dir := t.TempDir()
	freeze := func(vm string) string { return "touch " + filepath.Join(dir, vm+".frozen") }
	thaw := func(vm string) string { return "rm -f " + filepath.Join(dir, vm+".frozen") }
	frozen := func() []string {
		m, _ := filepath.Glob(filepath.Join(dir, "*.frozen"))
		return m
	}
	ctx := context.Background()

	seq, err := a.AppMarker(ctx, Hooks{VMs: []Hook{{"vm0", freeze("vm0"), thaw("vm0")}, {"vm1", freeze("vm1"), thaw("vm1")}}, Timeout: 5 * time.Second})
	if err != nil || seq == 0 || len(frozen()) != 0 {
		t.Fatalf("healthy hooks: seq %d, err %v, still frozen %v", seq, err, frozen())
	}

	before := a.NextSeq()
	seq, err = a.AppMarker(ctx, Hooks{VMs: []Hook{{"vm0", freeze("vm0"), thaw("vm0")}, {"vm1", "echo disk busy >&2; exit 3", thaw("vm1")}}, Timeout: 5 * time.Second})
	if seq != 0 || err == nil || !strings.Contains(err.Error(), `VM vm1 pre hook "echo disk busy >&2; exit 3": exit status 3: disk busy`) {
		t.Fatalf("failing pre hook: seq %d, err %v", seq, err)
	}
	if len(frozen()) != 0 || a.NextSeq() != before {
		t.Fatalf("after a failing pre hook: frozen %v, a marker was taken: %v", frozen(), a.NextSeq() != before)
	}

	start := time.Now()
	seq, err = a.AppMarker(ctx, Hooks{VMs: []Hook{{"vm0", freeze("vm0") + "; sleep 30", thaw("vm0")}, {"vm1", freeze("vm1"), thaw("vm1")}}, Timeout: 300 * time.Millisecond})
	if seq != 0 || err == nil || !strings.Contains(err.Error(), "VM vm0 pre hook") || !strings.Contains(err.Error(), "timed out after 300ms") {
		t.Fatalf("hanging pre hook: seq %d, err %v", seq, err)
	}
	if len(frozen()) != 0 || time.Since(start) > 5*time.Second {
		t.Fatalf("a hanging hook left %v frozen or held the agent %s", frozen(), time.Since(start))
	}
	if _, err := a.AppMarker(ctx, Hooks{VMs: []Hook{{"vm0", freeze("vm0"), thaw("vm0")}, {"vm1", "", ""}}}); err == nil ||
		!strings.Contains(err.Error(), "no pre hook for VM(s) vm1") {
		t.Fatalf("a VM without a pre hook: %v", err)
	}
}
