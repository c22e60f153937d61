package tests

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/standby-dr/standby/shared/azure/pageblobs"
	"github.com/standby-dr/standby/shared/azure/tables"
	"github.com/standby-dr/standby/shared/replication"
	"github.com/standby-dr/standby/shared/testkit/testenv"
)

type jobView struct {
	ID     string            `json:"id"`
	State  string            `json:"state"`
	Point  string            `json:"point"`
	Error  string            `json:"error"`
	Result map[string]string `json:"result"`
	Steps  []struct {
		Name    string `json:"name"`
		State   string `json:"state"`
		Outcome string `json:"outcome"`
	} `json:"steps"`
}

func (s *stack) runJob(t *testing.T, path, body string, limit time.Duration) jobView {
	t.Helper()
	return s.awaitJob(t, s.postJob(t, path, body), limit)
}

// postJob starts a job and returns its location.
func (s *stack) postJob(t *testing.T, path, body string) string {
	t.Helper()
	status, header, resp := s.app.call(t, "POST", path, "test-key", body)
	if status != http.StatusAccepted {
		t.Fatalf("POST %s: %d %s", path, status, resp)
	}
	return header.Get("Location")
}

// awaitJob waits for a job to end and fails the test unless it succeeded.
func (s *stack) awaitJob(t *testing.T, location string, limit time.Duration) jobView {
	t.Helper()
	var job jobView
	waitFor(t, limit, "job "+location, func() bool {
		_, _, body := s.app.call(t, "GET", location, "test-key", "")
		json.Unmarshal([]byte(body), &job)
		return job.State == "Succeeded" || job.State == "Failed"
	})
	if job.State != "Succeeded" {
		t.Fatalf("job %s: %+v", location, job)
	}
	return job
}

// compareWithSources checks every failed-over disk byte for byte against the source image files.
func compareWithSources(t *testing.T, spec, container string) {
	var sp struct {
		VMs []struct {
			Name  string `json:"name"`
			Disks []struct {
				Name      string `json:"name"`
				SizeBytes int64  `json:"sizeBytes"`
				Source    string `json:"source"`
			} `json:"disks"`
		} `json:"vms"`
	}
	data, _ := os.ReadFile(spec)
	json.Unmarshal(data, &sp)
	pages := pageblobs.New(testenv.BlobService(t, "target"))
	for _, vm := range sp.VMs {
		for _, d := range vm.Disks {
			_, path, _ := strings.Cut(d.Source, ":") // file: or nbd:
			src, _ := os.ReadFile(path)
			ref := replication.DiskIn(container, vm.Name+"/"+d.Name)
			got, err := pages.ReadRange(context.Background(), ref, "", 0, d.SizeBytes)
			if err != nil || !bytes.Equal(got, src) {
				t.Fatalf("failed-over disk %s/%s differs from its source (err %v)", vm.Name, d.Name, err)
			}
			if err := replication.CheckFixedVHD(context.Background(), pages, ref, d.SizeBytes); err != nil {
				t.Fatalf("failed-over disk %s/%s is not an importable fixed VHD: %v", vm.Name, d.Name, err)
			}
		}
	}
}

// A planned failover while the workload writes: the agent is told to stop taking writes, flushes and
// marks the end; the job waits for apply and the final point, and the failed-over disks hold every
// write the source acknowledged. Then commit.
func TestPlannedFailoverLosesNothing(t *testing.T) {
	s := newStack(t, "*/1 * * * * *")
	group, state := testenv.Unique("planned"), t.TempDir()
	spec := writeSpec(t, 2, 1)
	p := startAgent(t, s, "-group", group, "-spec", spec, "-state", state, "-workload-rate", "4", "-duration", "2m")
	waitFor(t, 30*time.Second, "the group to be protected with a point", func() bool {
		_, _, body := s.app.call(t, "GET", "/api/v1/groups/"+group, "test-key", "")
		return strings.Contains(body, `"state": "Protected"`) && strings.Contains(body, `"lastRecoveryPoint"`)
	})
	time.Sleep(2 * time.Second) // writes under way
	start := time.Now()
	job := s.runJob(t, "/api/v1/groups/"+group+"/failover", `{"type":"planned"}`, 2*time.Minute)
	p.wait(t, 30*time.Second) // the agent stopped by itself
	t.Logf("planned failover took %s; point %s; %s", time.Since(start).Round(time.Millisecond), job.Point, job.Steps[1].Outcome)
	compareWithSources(t, spec, group+"-failover")
	_, _, body := s.app.call(t, "GET", "/api/v1/groups/"+group, "test-key", "")
	if !strings.Contains(body, `"state": "FailedOver"`) || !strings.Contains(body, `"replicating": false`) {
		t.Fatalf("group after a planned failover: %s", body)
	}
	if status, _, body := s.app.call(t, "POST", "/api/v1/groups/"+group+"/failover", "test-key", `{"type":"unplanned"}`); status != 409 ||
		!strings.Contains(body, "the group is FailedOver already") {
		t.Fatalf("a second failover: %d %s", status, body)
	}
	s.runJob(t, "/api/v1/groups/"+group+"/commit", "", time.Minute)
	page := s.points(t, group)
	if len(page.Points) != 1 || page.Points[0].ID != job.Point {
		t.Fatalf("points after commit: %+v", page.Points)
	}
}

// An unplanned failover after the source died (the agent killed): nothing of the source is touched; the
// failed-over disks are the newest point's, byte for byte against the ground truth at that marker.
func TestUnplannedFailoverAfterTheSourceDied(t *testing.T) {
	s := newStack(t, "*/1 * * * * *")
	group, state, truth := testenv.Unique("unplanned"), t.TempDir(), filepath.Join(t.TempDir(), "truth.jsonl")
	p := startAgent(t, s, "-group", group, "-spec", writeSpec(t, 2, 1), "-state", state, "-workload-rate", "4",
		"-duration", "2m", "-marker-interval", "700ms", "-truth", truth)
	waitFor(t, 30*time.Second, "a few points", func() bool { return len(s.points(t, group).Points) >= 3 })
	p.cmd.Process.Signal(syscall.SIGKILL)
	<-p.done
	time.Sleep(1500 * time.Millisecond) // cutpoints promotes what apply finished
	newest := s.points(t, group).Points[0]
	job := s.runJob(t, "/api/v1/groups/"+group+"/failover", `{"type":"unplanned","recoveryPoint":"latestProcessed"}`, time.Minute)
	if job.Point != newest.ID {
		t.Fatalf("failed over to %s, the newest point is %s", job.Point, newest.ID)
	}
	// Failed over, the group is neither Healthy nor lagging: its health is not rated and it has no RPO.
	_, _, body := s.app.call(t, "GET", "/api/v1/groups/"+group, "test-key", "")
	if v := groupViewOf(body); v.State != "FailedOver" || v.Health != "" || v.RPOSeconds != 0 || v.ReplicationState != "stopped" || len(v.HealthErrors) != 0 {
		t.Fatalf("the failed-over group: state %s, health %q, RPO %g s, replication %s, errors %v", v.State, v.Health, v.RPOSeconds, v.ReplicationState, v.HealthErrors)
	}
	truths, err := readTruthFile(truth)
	if err != nil {
		t.Fatal(err)
	}
	want, ok := truths[newest.Seq]
	if !ok {
		t.Fatalf("no ground truth for %s", newest.ID)
	}
	pages := pageblobs.New(testenv.BlobService(t, "target"))
	for key, sum := range want {
		got, err := pages.ReadRange(context.Background(), replication.DiskIn(group+"-failover", key), "", 0, diskSize)
		if err != nil || sha256hex(got) != sum {
			t.Fatalf("failed-over %s differs from the ground truth at %s (err %v)", key, newest.ID, err)
		}
	}
	if !strings.Contains(job.Result["template:vm0"], `"Microsoft.Compute/virtualMachines"`) {
		t.Fatalf("no machine definition: %v", job.Result)
	}
}

// Job faults: two concurrent failovers of one group — exactly one runs; the handler killed (kill -9)
// in the middle of the steps — the job resumes and succeeds; a step that always fails — the queue
// dead-letters its message and the job ends Failed with the reason.
func TestFailoverJobFaults(t *testing.T) {
	s := newStack(t, "*/1 * * * * *")
	group := testenv.Unique("jobs")
	a, _ := s.twoVMAgent(t, group)
	a.Write("a/d", 0, bytes.Repeat([]byte{1}, 4096))
	a.Marker("crash", false)
	a.Close(context.Background())
	waitFor(t, 20*time.Second, "points", func() bool { return len(s.points(t, group).Points) >= 2 })

	// A point that is not there is refused before it becomes a job, naming the choices.
	if status, _, body := s.app.call(t, "POST", "/api/v1/groups/"+group+"/failover", "test-key", `{"type":"test","recoveryPoint":"rp-999999"}`); status != 400 ||
		!strings.Contains(body, "no recovery point rp-999999") || !strings.Contains(body, "choose latest (through") {
		t.Fatalf("a failover to rp-999999: %d %s", status, body)
	}
	// A step that always fails: the oldest point's snapshot of one disk is gone, so its copy cannot
	// start (the newest stays whole for the failovers below).
	ctx := context.Background()
	store := tables.New(testenv.TableService(t, "target"))
	points, _ := replication.ListPoints(ctx, store, group)
	g, _ := replication.LoadGroup(ctx, store, group)
	oldest := points[len(points)-1]
	for key, snap := range oldest.Snapshots {
		if err := pageblobs.New(testenv.BlobService(t, "target")).DeleteSnapshot(ctx, g.TargetDisk(key), snap); err != nil {
			t.Fatal(err)
		}
		break
	}
	status, header, body := s.app.call(t, "POST", "/api/v1/groups/"+group+"/failover", "test-key", `{"type":"test","recoveryPoint":"`+oldest.ID+`"}`)
	if status != 202 {
		t.Fatalf("POST: %d %s", status, body)
	}
	var job jobView
	waitFor(t, 60*time.Second, "the job to fail", func() bool {
		_, _, body := s.app.call(t, "GET", header.Get("Location"), "test-key", "")
		json.Unmarshal([]byte(body), &job)
		return job.State == "Failed"
	})
	if !strings.Contains(job.Error, "step start-copies failed 10 times") {
		t.Fatalf("failed job: %+v", job)
	}
	br := s.app.broker(t)
	waitFor(t, 10*time.Second, "the message in the dead-letter queue", func() bool {
		dls, _ := br.DeadLetters(context.Background(), "jobs", 100)
		return len(dls) == 1 && dls[0].DeadLetterReason == "MaxDeliveryCountExceeded"
	})
	if status, _, body := s.app.call(t, "GET", "/api/v1/jobs/dead-letters", "test-key", ""); status != 200 ||
		!strings.Contains(body, `"reason": "MaxDeliveryCountExceeded"`) || !strings.Contains(body, `"group": "`+group+`"`) {
		t.Fatalf("dead letters: %d %s", status, body)
	}
	// The failed test failover leaves its claim: clean up before the next.
	s.runJob(t, "/api/v1/groups/"+group+"/cleanup-test-failover", "", time.Minute)

	// Two failovers at once: one 202, one 409.
	codes := make(chan int, 2)
	for i := 0; i < 2; i++ {
		go func() {
			status, _, _ := s.app.call(t, "POST", "/api/v1/groups/"+group+"/failover", "test-key", `{"type":"unplanned"}`)
			codes <- status
		}()
	}
	c1, c2 := <-codes, <-codes
	if c1+c2 != 202+409 {
		t.Fatalf("two concurrent failovers answered %d and %d, want one 202 and one 409", c1, c2)
	}

	// Kill the handler again and again while the failover's steps run: it still succeeds.
	killHandlers(3*time.Second, s.app)
	waitFor(t, 90*time.Second, "the failover to succeed despite the kills", func() bool {
		_, _, body := s.app.call(t, "GET", "/api/v1/groups/"+group, "test-key", "")
		return strings.Contains(body, `"state": "FailedOver"`)
	})
}

// The operator CLI against the API: list, points, a test failover followed step by step, cleanup.
func TestOperatorCLI(t *testing.T) {
	s := newStack(t, "*/1 * * * * *")
	group := testenv.Unique("cli")
	a, _ := s.twoVMAgent(t, group)
	a.Write("b/d", 8192, bytes.Repeat([]byte{5}, 4096))
	a.Marker("crash", false)
	a.Close(context.Background())
	waitFor(t, 20*time.Second, "points", func() bool { return len(s.points(t, group).Points) >= 2 })
	cli := func(args ...string) string { return standbyCLI(t, s, args...) }
	if out := cli("groups"); !strings.Contains(out, group) || !strings.Contains(out, "Protected") {
		t.Fatalf("groups:\n%s", out)
	}
	if out := cli("points", group); !strings.Contains(out, "POINT") || !strings.Contains(out, "rp-") || !strings.Contains(out, "restorable from") {
		t.Fatalf("points:\n%s", out)
	}
	if out := cli("points", group, "-o", "json"); !strings.Contains(out, `"id": "rp-`) {
		t.Fatalf("points -o json:\n%s", out)
	}
	out := cli("failover", group, "--type", "test", "--point", "latestProcessed", "--wait")
	for _, want := range []string{"resolve-point", "start-copies", "machine-definitions", "succeeded", "disks in " + group + "-test"} {
		if !strings.Contains(out, want) {
			t.Fatalf("failover --wait lacks %q:\n%s", want, out)
		}
	}
	if out := cli("cleanup-test", group, "--wait"); !strings.Contains(out, "release-holds") {
		t.Fatalf("cleanup-test:\n%s", out)
	}
	cmd := exec.Command(filepath.Join(binDir, "standby"), "commit", group)
	cmd.Env = append(os.Environ(), "STANDBY_API="+s.apiBase(), "STANDBY_API_KEY=test-key")
	if out, err := cmd.CombinedOutput(); err == nil || !strings.Contains(string(out), "409 conflicts with the group's state: only a FailedOver group can be committed, it is Protected") {
		t.Fatalf("commit of a protected group: %v\n%s", err, out)
	}
}

// standbyCLI runs the operator CLI against the stack and returns its output; a failure fails the test.
func standbyCLI(t *testing.T, s *stack, args ...string) string {
	t.Helper()
	cmd := exec.Command(filepath.Join(binDir, "standby"), args...)
	cmd.Env = append(os.Environ(), "STANDBY_API="+s.apiBase(), "STANDBY_API_KEY=test-key")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("standby %v: %v\n%s", args, err, out)
	}
	return string(out)
}
