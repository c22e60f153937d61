package tests

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math/rand"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/standby-dr/standby/shared/api/apiv1"
	"github.com/standby-dr/standby/shared/azure/azconn"
	"github.com/standby-dr/standby/shared/azure/journal"
	"github.com/standby-dr/standby/shared/azure/pageblobs"
	"github.com/standby-dr/standby/shared/replication"
	"github.com/standby-dr/standby/shared/standin/broker"
	"github.com/standby-dr/standby/shared/testkit/testenv"
)

const diskSize = 16 << 20

// writeSpec writes a group spec of vms × disks file-backed disks, each prefilled with random data in a
// few regions (content initial replication must carry), and returns the spec's path.
func writeSpec(t *testing.T, vms, disks int) string {
	t.Helper()
	dir := t.TempDir()
	rng := rand.New(rand.NewSource(time.Now().UnixNano()))
	type disk struct {
		Name      string `json:"name"`
		SizeBytes int64  `json:"sizeBytes"`
		Source    string `json:"source"`
	}
	type vm struct {
		Name  string `json:"name"`
		Disks []disk `json:"disks"`
	}
	var spec struct {
		VMs    []vm           `json:"vms"`
		Policy map[string]int `json:"policy"`
	}
	spec.Policy = map[string]int{"crashConsistentIntervalSeconds": 60}
	for v := 0; v < vms; v++ {
		m := vm{Name: fmt.Sprintf("vm%d", v)}
		for d := 0; d < disks; d++ {
			path := filepath.Join(dir, fmt.Sprintf("vm%d-disk%d.img", v, d))
			f, err := os.Create(path)
			if err != nil {
				t.Fatal(err)
			}
			f.Truncate(diskSize)
			for i := 0; i < 4; i++ {
				buf := make([]byte, 256<<10)
				rng.Read(buf)
				f.WriteAt(buf, int64(rng.Intn(diskSize/4096-64))*4096)
			}
			f.Close()
			m.Disks = append(m.Disks, disk{Name: fmt.Sprintf("disk%d", d), SizeBytes: diskSize, Source: "file:" + path})
		}
		spec.VMs = append(spec.VMs, m)
	}
	path := filepath.Join(dir, "spec.json")
	writeJSON(t, path, spec)
	return path
}

// agentProc is a running agent process.
type agentProc struct {
	cmd  *exec.Cmd
	out  *syncBuffer
	done chan error
}

func startAgent(t testing.TB, s *stack, args ...string) *agentProc {
	t.Helper()
	return startAgentWith(t, s, nil, args...)
}

// startAgentWith starts the agent with settings beyond the stack's.
func startAgentWith(t testing.TB, s *stack, env []string, args ...string) *agentProc {
	t.Helper()
	return startAgentProc(t, s, filepath.Join(binDir, "agent"), env, args...)
}

// startAgentProc starts a build of the agent (binary) on the stack.
func startAgentProc(t testing.TB, s *stack, binary string, env []string, args ...string) *agentProc {
	t.Helper()
	p := &agentProc{out: &syncBuffer{}, done: make(chan error, 1)}
	p.cmd = exec.Command(binary, append([]string{"run"}, args...)...)
	p.cmd.Env = append(s.env(), env...)
	p.cmd.Stdout, p.cmd.Stderr = p.out, p.out
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { p.done <- p.cmd.Wait() }()
	t.Cleanup(func() {
		p.cmd.Process.Kill()
		if t.Failed() {
			t.Logf("agent output:\n%s", lastLines(p.out.String(), 40))
		}
	})
	return p
}

func (p *agentProc) wait(t *testing.T, limit time.Duration) {
	t.Helper()
	select {
	case err := <-p.done:
		if err != nil {
			t.Fatalf("agent: %v\n%s", err, lastLines(p.out.String(), 40))
		}
	case <-time.After(limit):
		t.Fatalf("agent still running after %s", limit)
	}
}

func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

func verifyGroup(t *testing.T, s *stack, group, state, truth string) string {
	t.Helper()
	cmd := exec.Command(filepath.Join(binDir, "verify"), "-group", group, "-state", state, "-truth", truth, "-timeout", "3m")
	cmd.Env = s.env()
	out, err := cmd.CombinedOutput()
	if err != nil || !strings.Contains(string(out), "verified: every target disk and every marker snapshot is byte-identical") {
		t.Fatalf("verify: %v\n%s", err, out)
	}
	return string(out)
}

// A multi-VM, multi-disk group: initial replication of prefilled disks while the workload writes
// (overlapping, random and sequential), markers every second; then every target disk and every marker
// snapshot is compared with the sources and the ground truth.
func TestReplicationEndToEnd(t *testing.T) {
	s := newStack(t, "0 0 0 1 1 *")
	group, state, truth := testenv.Unique("e2e"), t.TempDir(), filepath.Join(t.TempDir(), "truth.jsonl")
	p := startAgent(t, s, "-group", group, "-spec", writeSpec(t, 2, 2), "-state", state, "-workload-rate", "6",
		"-duration", "5s", "-marker-interval", "700ms", "-truth", truth, "-batch-bytes", "1048576")
	p.wait(t, 60*time.Second)
	out := verifyGroup(t, s, group, state, truth)
	if !strings.Contains(out, "markers:") || strings.Contains(out, " 0 checked") {
		t.Fatalf("no marker checked:\n%s", out)
	}
	_, _, body := s.app.call(t, "GET", "/api/v1/groups/"+group, "test-key", "")
	if !strings.Contains(body, `"state": "Protected"`) || !strings.Contains(body, `"percent": 100`) {
		t.Fatalf("group after initial replication:\n%s", body)
	}
	// Every descriptor delivered again, shuffled: nothing changes.
	replayShuffled(t, s)
	verifyGroup(t, s, group, state, truth)
	_, _, after := s.app.call(t, "GET", "/api/v1/groups/"+group, "test-key", "")
	if watermark(body) != watermark(after) {
		t.Fatalf("replayed descriptors moved the watermark from %d to %d", watermark(body), watermark(after))
	}
}

func watermark(view string) int64 { return groupViewOf(view).Watermark }

// groupViewOf decodes a group's view as the API answers it (the zero view for anything else).
func groupViewOf(body string) apiv1.GroupView {
	var v apiv1.GroupView
	json.Unmarshal([]byte(body), &v)
	return v
}

// replayShuffled publishes every event of the change stream again, in random order, and waits until
// apply has consumed them all.
func replayShuffled(t *testing.T, s *stack) {
	ctx := context.Background()
	br := s.app.broker(t)
	var bodies [][]byte
	for p := 0; p < 4; p++ {
		events, err := br.ReadEvents(ctx, "changes", p, -1, 100000, 0)
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range events {
			bodies = append(bodies, e.Body)
		}
	}
	rand.Shuffle(len(bodies), func(i, j int) { bodies[i], bodies[j] = bodies[j], bodies[i] })
	var group string
	for _, b := range bodies {
		var d struct{ Group string }
		json.Unmarshal(b, &d)
		group = d.Group
		if _, err := br.Publish(ctx, "changes", d.Group, []broker.Event{{Body: b}}); err != nil {
			t.Fatal(err)
		}
	}
	part := broker.PartitionFor(group, 4)
	waitFor(t, 60*time.Second, "apply to consume the replayed events", func() bool {
		events, _ := br.ReadEvents(ctx, "changes", part, -1, 1000000, 0)
		seq, ok, _ := br.LoadCheckpoint(ctx, "changes", "apply", part)
		return ok && len(events) > 0 && seq == events[len(events)-1].SequenceNumber
	})
}

// kill -9 of the handler, again and again, in the middle of applying: devhost restarts it, the retry
// policy redelivers, apply resumes from its watermark, and the target ends byte-identical.
func TestReplicationSurvivesHandlerKills(t *testing.T) {
	s := newStack(t, "0 0 0 1 1 *")
	group, state, truth := testenv.Unique("kill"), t.TempDir(), filepath.Join(t.TempDir(), "truth.jsonl")
	p := startAgent(t, s, "-group", group, "-spec", writeSpec(t, 1, 2), "-state", state, "-workload-rate", "6",
		"-duration", "6s", "-marker-interval", "1s", "-truth", truth, "-batch-bytes", "524288")
	kills := 0
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); {
		time.Sleep(700 * time.Millisecond)
		if pid := handlerPID(s.app.out.String()); pid > 0 && syscall.Kill(pid, syscall.SIGKILL) == nil {
			kills++
		}
	}
	p.wait(t, 90*time.Second)
	verifyGroup(t, s, group, state, truth)
	if kills < 3 || strings.Count(s.app.out.String(), "handler exited; restarting") < 3 {
		t.Fatalf("only %d kills landed", kills)
	}
}

func handlerPID(devhostOut string) int {
	pid := 0
	sc := bufio.NewScanner(strings.NewReader(devhostOut))
	for sc.Scan() {
		var line struct {
			Msg string `json:"msg"`
			PID int    `json:"pid"`
		}
		if json.Unmarshal(sc.Bytes(), &line) == nil && line.Msg == "handler started" {
			pid = line.PID
		}
	}
	return pid
}

// kill -9 of the agent in the middle of batches: the writes it had not journaled are lost from the
// stream, so the restarted agent sees its unclean stop, compares checksums with the target and sends the
// differing blocks; the target ends byte-identical to the source.
func TestReplicationSurvivesAgentKill(t *testing.T) {
	s := newStack(t, "0 0 0 1 1 *")
	group, state, truth := testenv.Unique("agentkill"), t.TempDir(), filepath.Join(t.TempDir(), "truth.jsonl")
	spec := writeSpec(t, 1, 2)
	p := startAgent(t, s, "-group", group, "-spec", spec, "-state", state, "-workload-rate", "8",
		"-duration", "1m", "-marker-interval", "500ms", "-truth", truth, "-batch-bytes", "2097152", "-batch-delay", "400ms")
	time.Sleep(3 * time.Second)
	p.cmd.Process.Signal(syscall.SIGKILL)
	<-p.done
	p2 := startAgent(t, s, "-group", group, "-spec", spec, "-state", state, "-workload-rate", "4", "-duration", "3s",
		"-marker-interval", "700ms", "-truth", truth)
	p2.wait(t, 60*time.Second)
	if !strings.Contains(p2.out.String(), "stopped uncleanly") {
		t.Fatalf("the restarted agent did not notice the unclean stop:\n%s", lastLines(p2.out.String(), 20))
	}
	verifyGroup(t, s, group, state, truth)
}

// Target storage answering 503 (ServerBusy) to every other request for a while: the SDK's retries
// and the function's retry policy absorb it; nothing is lost.
func TestReplicationSurvivesStorageThrottling(t *testing.T) {
	direct := testenv.Storage(t, "target")
	blob := endpoint(t, direct, "BlobEndpoint")
	var failing atomic.Bool
	var count, failed atomic.Int64
	proxy := httputil.NewSingleHostReverseProxy(blob)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if failing.Load() && count.Add(1)%2 == 0 {
			failed.Add(1)
			io.Copy(io.Discard, r.Body)
			w.Header().Set("x-ms-error-code", "ServerBusy")
			w.WriteHeader(http.StatusServiceUnavailable)
			return
		}
		proxy.ServeHTTP(w, r)
	})}
	go srv.Serve(l)
	t.Cleanup(func() { srv.Close() })
	throttled := strings.Replace(direct, "BlobEndpoint="+blob.Scheme+"://"+blob.Host, "BlobEndpoint=http://"+l.Addr().String(), 1)
	s := newStackWith(t, "0 0 0 1 1 *", throttled)
	group, state, truth := testenv.Unique("throttle"), t.TempDir(), filepath.Join(t.TempDir(), "truth.jsonl")
	p := startAgent(t, s, "-group", group, "-spec", writeSpec(t, 1, 2), "-state", state, "-workload-rate", "6",
		"-duration", "5s", "-marker-interval", "300ms", "-truth", truth, "-batch-bytes", "262144")
	time.Sleep(500 * time.Millisecond)
	failing.Store(true)
	time.Sleep(4 * time.Second)
	failing.Store(false)
	p.wait(t, 90*time.Second)
	verifyGroup(t, s, group, state, truth)
	if failed.Load() < 5 {
		t.Fatalf("only %d requests were failed", failed.Load())
	}
}

func endpoint(t *testing.T, cs, key string) *url.URL {
	for _, part := range strings.Split(cs, ";") {
		if k, v, ok := strings.Cut(part, "="); ok && k == key {
			u, err := url.Parse(v)
			if err != nil {
				t.Fatal(err)
			}
			return &url.URL{Scheme: u.Scheme, Host: u.Host}
		}
	}
	t.Fatalf("no %s in the connection string", key)
	return nil
}

func (s *stack) journal(t *testing.T) replication.JournalStore {
	svc, err := pageblobs.ServiceClient(azconn.Setting{Name: "cache", ConnectionString: s.cache})
	if err != nil {
		t.Fatal(err)
	}
	return journal.New(svc, s.journalName)
}

// breakJournal runs the workload with apply stopped for a while, damages one batch apply has not read
// yet (damage deletes or corrupts it), restarts apply, and checks that the group stops at that batch,
// the agent resyncs by checksums, and the target ends byte-identical.
func breakJournal(t *testing.T, damage func(j replication.JournalStore, group string, seq int64), wantLog string) *stack {
	s := newStack(t, "0 0 0 1 1 *")
	group, state, truth := testenv.Unique("gap"), t.TempDir(), filepath.Join(t.TempDir(), "truth.jsonl")
	p := startAgent(t, s, "-group", group, "-spec", writeSpec(t, 1, 2), "-state", state, "-workload-rate", "4",
		"-duration", "12s", "-marker-interval", "500ms", "-truth", truth, "-batch-bytes", "262144")
	time.Sleep(1500 * time.Millisecond)
	s.app.stop(t)
	j := s.journal(t)
	ctx := context.Background()
	seqs, err := j.List(ctx, group)
	if err != nil || len(seqs) == 0 {
		t.Fatalf("journal: %v %v", seqs, err)
	}
	victim := seqs[len(seqs)-1] + 5
	waitFor(t, 10*time.Second, "more batches while apply is down", func() bool {
		seqs, _ := j.List(ctx, group)
		return len(seqs) > 0 && seqs[len(seqs)-1] > victim+2
	})
	damage(j, group, victim)
	s.app.start(t)
	p.wait(t, 90*time.Second)
	verifyGroup(t, s, group, state, truth)
	if !strings.Contains(s.app.out.String(), wantLog) || !strings.Contains(s.app.out.String(), `"msg":"resync started"`) {
		t.Fatalf("devhost output lacks %q or the resync:\n%s", wantLog, lastLines(s.app.out.String(), 30))
	}
	return s
}

func TestJournalBatchLostThenResync(t *testing.T) {
	breakJournal(t, func(j replication.JournalStore, group string, seq int64) {
		if err := j.Delete(context.Background(), group, seq); err != nil {
			t.Fatal(err)
		}
	}, "is missing from the journal: resync needed")
}

func TestCorruptBatchQuarantinedThenResync(t *testing.T) {
	var victim int64
	s := breakJournal(t, func(j replication.JournalStore, group string, seq int64) {
		payload, err := j.Get(context.Background(), group, seq)
		if err != nil {
			t.Fatal(err)
		}
		payload[len(payload)/2] ^= 0x5a
		victim = seq
		// Damage in storage: Put would refuse it (batches are written once), so it goes in as a
		// storage-level overwrite does.
		if err := j.Replace(context.Background(), group, seq, payload); err != nil {
			t.Fatal(err)
		}
	}, "was corrupt and is quarantined")
	svc, _ := pageblobs.ServiceClient(azconn.Setting{Name: "cache", ConnectionString: s.cache})
	quarantine := journal.New(svc, s.journalName+"-quarantine")
	seqs, err := quarantine.List(context.Background(), strings.Split(lastGroup(s), "/")[0])
	if err != nil || len(seqs) != 1 || seqs[0] != victim {
		t.Fatalf("quarantine holds %v (%v), want [%d]", seqs, err, victim)
	}
}

// lastGroup finds the group the devhost output talks about.
func lastGroup(s *stack) string {
	var group string
	sc := bufio.NewScanner(strings.NewReader(s.app.out.String()))
	for sc.Scan() {
		var line struct {
			Msg   string `json:"msg"`
			Group string `json:"group"`
		}
		if json.Unmarshal(sc.Bytes(), &line) == nil && line.Msg == "group stopped" {
			group = line.Group
		}
	}
	return group
}
