package tests

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/standby-dr/standby/shared/azure/pageblobs"
	"github.com/standby-dr/standby/shared/replication"
	"github.com/standby-dr/standby/shared/testkit/testenv"
)

// killInEveryStep kill -9s the app's handler right after each step of the job is recorded done (so the
// next step starts on a redelivery) and in the middle of deploy-vms — the moment the local compute has
// started a VM's QEMU and not yet recorded it — until the job ends; devhost restarts the handler each
// time. It returns where it killed.
func killInEveryStep(t *testing.T, s *stack, location string, limit time.Duration) (jobView, []string) {
	t.Helper()
	var killed []string
	seen := len(s.app.out.String())
	stepDone := regexp.MustCompile(`"msg":"job step done".*?"step":"([a-z-]+)"`)
	var job jobView
	deadline := time.Now().Add(limit)
	for job.State != "Succeeded" && job.State != "Failed" {
		if time.Now().After(deadline) {
			t.Fatalf("job %s still %s after %s (killed in %v)", location, job.State, limit, killed)
		}
		out := s.app.out.String()
		for _, line := range strings.Split(out[seen:], "\n") {
			where := ""
			if m := stepDone.FindStringSubmatch(line); m != nil {
				where = "after " + m[1]
			} else if strings.Contains(line, `"msg":"VM started"`) {
				where = "in deploy-vms"
			}
			if where != "" && !slices.Contains(killed, where) {
				if pid := handlerPID(out); pid > 0 {
					syscall.Kill(pid, syscall.SIGKILL)
					killed = append(killed, where)
				}
			}
		}
		seen = len(out)
		time.Sleep(5 * time.Millisecond)
		if len(killed) > 0 {
			_, _, body := s.app.call(t, "GET", location, "test-key", "")
			json.Unmarshal([]byte(body), &job)
		}
	}
	return job, killed
}

// An unplanned failover after the source died — the agent killed in the middle of its workload —
// with the handler killed in every step it is seen running, bring-up steps included: the job resumes
// each time and ends with exactly one VM per source VM (one NIC, one managed disk per disk, one
// deployment), the VM boots, and its disks are the newest point's, byte for byte against the ground
// truth at that marker.
func TestUnplannedFailoverAgentKilledHandlerKilledInEveryStep(t *testing.T) {
	s, computeDir, images := newComputeStack(t, "*/1 * * * * *")
	spec, dir := bootableWebVM(t, images)
	group, truth := testenv.Unique("killed"), filepath.Join(dir, "truth.jsonl")
	p := startAgent(t, s, "-group", group, "-spec", spec, "-state", t.TempDir(), "-workload-rate", "2", "-workload-data-only",
		"-duration", "2m", "-marker-interval", "700ms", "-truth", truth)
	waitFor(t, 90*time.Second, "a few points after the baseline", func() bool { return len(s.points(t, group).Points) >= 3 })
	p.cmd.Process.Signal(syscall.SIGKILL)
	<-p.done
	time.Sleep(1500 * time.Millisecond) // cutpoints promotes what apply finished
	newest := s.points(t, group).Points[0]

	job, killed := killInEveryStep(t, s, s.postJob(t, "/api/v1/groups/"+group+"/failover", `{"type":"unplanned"}`), 4*time.Minute)
	if job.State != "Succeeded" || job.Point != newest.ID || !strings.Contains(job.Result["vm:web"], "running healthy") {
		t.Fatalf("job %s at %s (newest %s): %v %s", job.State, job.Point, newest.ID, job.Result, job.Error)
	}
	// The kill inside deploy-vms is certain (a VM takes seconds to boot); the others depend on timing.
	for _, where := range []string{"in deploy-vms"} {
		if !slices.Contains(killed, where) {
			t.Fatalf("the handler was killed %v, not %s", killed, where)
		}
	}
	t.Logf("handler killed in steps %v", killed)
	rg := filepath.Join(computeDir, group+"-asr")
	for pattern, want := range map[string]int{"vms/*": 1, "networkInterfaces/*.json": 1, "disks/*.img": 2, "deployments/standby-*-web.json": 1} {
		if got, _ := filepath.Glob(filepath.Join(rg, pattern)); len(got) != want {
			t.Errorf("%s: %d, want %d: %v", pattern, len(got), want, got)
		}
	}
	if pids, _ := filepath.Glob("/proc/[0-9]*/cmdline"); countQEMU(pids, group) != 1 {
		t.Errorf("QEMU processes booting %s's disks: %d, want 1", group, countQEMU(pids, group))
	}
	truths, err := readTruthFile(truth)
	if err != nil {
		t.Fatal(err)
	}
	pages := pageblobs.New(testenv.BlobService(t, "target"))
	for key, sum := range truths[newest.Seq] {
		size := int64(8 << 20)
		if strings.HasSuffix(key, "/os") {
			info, _ := os.Stat(images.OS)
			size = info.Size()
		}
		got, err := pages.ReadRange(context.Background(), replication.DiskIn(group+"-failover", key), "", 0, size)
		if err != nil || sha256hex(got) != sum {
			t.Fatalf("failed-over %s differs from the ground truth at %s (err %v)", key, newest.ID, err)
		}
	}
}

// countQEMU counts the QEMU processes whose command line names the group's disks.
func countQEMU(cmdlines []string, group string) int {
	n := 0
	for _, f := range cmdlines {
		data, _ := os.ReadFile(f)
		if strings.Contains(string(data), "qemu-system") && strings.Contains(string(data), group+"-asr") {
			n++
		}
	}
	return n
}
