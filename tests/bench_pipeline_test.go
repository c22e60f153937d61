package tests

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/standby-dr/standby/shared/agent"
	"github.com/standby-dr/standby/shared/azure/pageblobs"
	"github.com/standby-dr/standby/shared/cpuprofile"
	"github.com/standby-dr/standby/shared/replication"
	"github.com/standby-dr/standby/shared/testkit/testenv"
	"golang.org/x/sync/errgroup"
)

// benchDir is where make bench keeps its profiles.
const benchDir = "../.local/bench"

// claimcheckRaw carries the pattern through the design's three hops with the storage SDK alone, the
// hops overlapping as in the pipeline and with its parallelism: the writes gathered into 4 MiB batches
// uploaded as block blobs to the cache account (4 in flight, as the agent), downloaded (4 in flight),
// and each write Put Page to its target disk (8 in flight, as apply). MB/s of the pattern's bytes.
func claimcheckRaw(t testing.TB, ws []write, disks []replication.DiskRefSpec) float64 {
	ctx := context.Background()
	cache, target := pageblobs.New(testenv.BlobService(t, "source")), pageblobs.New(testenv.BlobService(t, "target"))
	container := testenv.Unique("claimcheck")
	cache.EnsureContainer(ctx, container)
	target.EnsureContainer(ctx, container)
	for _, d := range disks {
		if err := target.Create(ctx, replication.DiskRef{Container: container, Name: d.Key}, d.Spec.SizeBytes); err != nil {
			t.Fatal(err)
		}
	}
	var batches [][]write
	for i, size := 0, 0; i < len(ws); i++ {
		if len(batches) == 0 || size+len(ws[i].data) > 4<<20 {
			batches, size = append(batches, nil), 0
		}
		batches[len(batches)-1] = append(batches[len(batches)-1], ws[i])
		size += len(ws[i].data)
	}
	blob := func(i int) replication.DiskRef {
		return replication.DiskRef{Container: container, Name: fmt.Sprintf("batch-%06d", i)}
	}
	uploaded, downloaded := make(chan int, 4), make(chan []write, 4)
	start := time.Now()
	var g errgroup.Group
	g.Go(func() error {
		defer close(uploaded)
		var up errgroup.Group
		up.SetLimit(4)
		for i, bt := range batches {
			up.Go(func() error {
				var payload []byte
				for _, w := range bt {
					payload = append(payload, w.data...)
				}
				err := cache.PutBlob(ctx, blob(i), payload, "application/octet-stream")
				uploaded <- i
				return err
			})
		}
		return up.Wait()
	})
	g.Go(func() error {
		defer close(downloaded)
		var down errgroup.Group
		down.SetLimit(4)
		for i := range uploaded {
			down.Go(func() error {
				payload, err := cache.GetBlob(ctx, blob(i))
				var out []write
				for _, w := range batches[i] {
					out = append(out, write{disk: w.disk, offset: w.offset, data: payload[:len(w.data)]})
					payload = payload[len(w.data):]
				}
				downloaded <- out
				return err
			})
		}
		return down.Wait()
	})
	g.Go(func() error {
		var put errgroup.Group
		put.SetLimit(8)
		for bt := range downloaded {
			for _, w := range bt {
				put.Go(func() error {
					return target.WritePages(ctx, replication.DiskRef{Container: container, Name: w.disk}, w.offset, w.data)
				})
			}
		}
		return put.Wait()
	})
	if err := g.Wait(); err != nil {
		t.Fatal(err)
	}
	return float64(patternBytes(ws)) / (1 << 20) / time.Since(start).Seconds()
}

// pipelineRun writes the pattern through the agent's write API into a new group and waits until apply
// has landed the final marker: end-to-end MB/s.
func pipelineRun(b *testing.B, s *stack, ws []write, disks []replication.DiskRefSpec, spec string) float64 {
	group := testenv.Unique("pipe")
	enable(b, s, group, spec)
	a := s.agent(b, group, disks)
	start := time.Now()
	for _, w := range ws {
		if err := a.Write(w.disk, w.offset, w.data); err != nil {
			b.Fatal(err)
		}
	}
	final := a.Marker("crash", true)
	waitWatermark(b, s, group, final, 5*time.Minute)
	a.Close(context.Background())
	return float64(patternBytes(ws)) / (1 << 20) / time.Since(start).Seconds()
}

// BenchmarkFigure_pipeline: the pipeline's end-to-end MB/s (agent write API → cache account → broker →
// devhost → apply → target) against claimcheck_raw_mb_per_s, the same bytes through the same three hops
// with the storage SDK alone, interleaved BENCH_PAIRS times (default 3) so machine noise hits both;
// pipeline_ratio is the median of the pairs' ratios. Over the pipeline runs it reports each process's CPU
// seconds per GiB carried, from the kernel's accounting (/proc/<pid>/stat): the agent (in this process,
// which does nothing else meanwhile), the handler, devhost with its embedded broker, and each Azurite.
// The agent's and the handler's CPU profiles are written to .local/bench.
func BenchmarkFigure_pipeline(b *testing.B) {
	pairs := 3
	if n, err := strconv.Atoi(os.Getenv("BENCH_PAIRS")); err == nil && n > 0 {
		pairs = n
	}
	if err := os.MkdirAll(benchDir, 0o755); err != nil {
		b.Fatal(err)
	}
	profiles, _ := filepath.Abs(benchDir)
	disks, spec := benchDisks(2, 2, 256<<20)
	ws := pattern(disks, 400, 1) // ~100 MiB
	s := defineStack(b, "0 0 0 1 1 *", testenv.Storage(b, "target"), testenv.Storage(b, "target"), testenv.Storage(b, "source"))
	s.app.start(b, cpuprofile.Setting+"="+filepath.Join(profiles, "handler.pprof"))
	procs := stackProcesses(b, s)
	cpu := map[string]float64{}
	var ratios, raws, e2es []float64
	for i := 0; i < pairs; i++ {
		raw := claimcheckRaw(b, ws, disks)
		stop := func() {}
		if i == pairs-1 { // this process hosts the agent
			var err error
			if stop, err = cpuprofile.Start(filepath.Join(profiles, "agent.pprof")); err != nil {
				b.Fatal(err)
			}
		}
		before := cpuOf(b, procs)
		e2e := pipelineRun(b, s, ws, disks, spec)
		for name, sec := range cpuOf(b, procs) {
			cpu[name] += sec - before[name]
		}
		stop()
		ratios, raws, e2es = append(ratios, e2e/raw), append(raws, raw), append(e2es, e2e)
		b.Logf("pair %d: claim check with the SDK alone %.1f MB/s, pipeline %.1f MB/s", i+1, raw, e2e)
	}
	gib := float64(patternBytes(ws)) * float64(pairs) / (1 << 30)
	b.ReportMetric(median(raws), "claimcheck_raw_mb_per_s:MB/s")
	b.ReportMetric(median(ratios), "pipeline_ratio:ratio")
	for name, sec := range cpu {
		b.ReportMetric(sec/gib, "cpu_s_per_gib_"+name+":s/GiB")
	}
	b.Logf("pipeline %.1f MB/s (median), ratio runs %v; CPU s/GiB %v; profiles in %s", median(e2es), ratios, cpu, profiles)
}

func median(v []float64) float64 {
	s := append([]float64(nil), v...)
	sort.Float64s(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

// stackProcesses names the processes of the local stack: this one (the agent), devhost (with the
// embedded broker), the handler devhost started, and the two Azurites (their pid files).
func stackProcesses(b *testing.B, s *stack) map[string]int {
	procs := map[string]int{"agent": os.Getpid(), "devhost": s.app.cmd.Process.Pid}
	waitFor(b, 30*time.Second, "the handler's process", func() bool {
		for _, task := range taskDirs(s.app.cmd.Process.Pid) {
			children, _ := os.ReadFile(filepath.Join(task, "children"))
			for _, c := range strings.Fields(string(children)) {
				pid, _ := strconv.Atoi(c)
				if cmdline, _ := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid)); strings.Contains(string(cmdline), "handler") {
					procs["handler"] = pid
				}
			}
		}
		return procs["handler"] != 0
	})
	for _, region := range []string{"source", "target"} {
		data, err := os.ReadFile("../.local/azurite-" + region + ".pid")
		if pid, perr := strconv.Atoi(strings.TrimSpace(string(data))); err == nil && perr == nil {
			procs["azurite_"+region] = pid
		}
	}
	return procs
}

func taskDirs(pid int) []string {
	dirs, _ := filepath.Glob(fmt.Sprintf("/proc/%d/task/*", pid))
	return dirs
}

func cpuOf(b *testing.B, procs map[string]int) map[string]float64 {
	out := map[string]float64{}
	for name, pid := range procs {
		out[name] = processCPU(b, pid)
	}
	return out
}

// sustainRun writes at rate MB/s for the given time into a new group, then marks the end: whether the
// writer kept its rate (the agent's bounded queue holds it back once the pipeline falls behind), how
// long apply took to land the end after it, and each applied write set's RPO.
type sustainRun struct {
	achieved, drain float64
	rpo             []float64
}

func runAtRate(b *testing.B, rate float64, d time.Duration) sustainRun {
	s := freshStack(b)
	defer s.app.stop(b)
	disks, spec := benchDisks(2, 2, 256<<20)
	group := testenv.Unique("rate")
	enable(b, s, group, spec)
	a := s.agent(b, group, disks)
	a.Marker("crash", true) // the disks start empty: nothing to copy first
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	st, err := (&agent.Workload{Agent: a, Disks: disks, BytesPerSecond: rate * (1 << 20), Seed: 3}).Run(ctx)
	if err != nil {
		b.Fatal(err)
	}
	final, ended := a.Marker("crash", false), time.Now()
	waitWatermark(b, s, group, final, 10*time.Minute)
	run := sustainRun{achieved: float64(st.Bytes) / (1 << 20) / d.Seconds(), drain: time.Since(ended).Seconds()}
	a.Close(context.Background())
	sc := bufio.NewScanner(strings.NewReader(s.app.out.String()))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		var line struct {
			Msg   string  `json:"msg"`
			Group string  `json:"group"`
			RPO   float64 `json:"rpoMs"`
		}
		if json.Unmarshal(sc.Bytes(), &line) == nil && line.Msg == "applied" && line.Group == group {
			run.rpo = append(run.rpo, line.RPO/1000)
		}
	}
	sort.Float64s(run.rpo)
	return run
}

// sustained: the writer kept 97% of its rate and the backlog at the end drained within 5 s.
func (r sustainRun) sustained(rate float64) bool { return r.achieved >= 0.97*rate && r.drain <= 5 }

func (r sustainRun) percentile(p int) float64 {
	if len(r.rpo) == 0 {
		return 0
	}
	return r.rpo[(len(r.rpo)-1)*p/100]
}

// freshStack starts a stack on emptied storage: a minute at capacity leaves gigabytes in each Azurite
// (the journal, and every Put Page as an extent until its garbage collection, every 10 minutes), and a
// long-lived Azurite slows down, so each run of the capacity search starts alike.
func freshStack(b *testing.B) *stack {
	for _, step := range []string{"reset", "start"} {
		if out, err := exec.Command("../scripts/azurite.sh", step).CombinedOutput(); err != nil {
			b.Fatalf("azurite %s: %v\n%s", step, err, out)
		}
	}
	return newStack(b, "0 0 0 1 1 *")
}

// BenchmarkFigure_capacity: pipeline_capacity_mb_per_s, the highest write rate the pipeline sustains for
// BENCH_CAPACITY_SECONDS (default 60) with a bounded backlog — the writer keeps its rate and the backlog
// drains within 5 s once it stops — found by stepping from 90% of a burst's end-to-end rate (up by 15%
// until a rate fails, or down by 15% until one holds), each run on emptied storage (freshStack); then
// RPO (p50, p99 of every write set apply lands) for as long again at 50% and at 80%
// of that capacity.
func BenchmarkFigure_capacity(b *testing.B) {
	seconds := 60
	fmt.Sscan(os.Getenv("BENCH_CAPACITY_SECONDS"), &seconds)
	d := time.Duration(seconds) * time.Second
	s := freshStack(b)
	disks, spec := benchDisks(2, 2, 256<<20)
	burst := pipelineRun(b, s, pattern(disks, 400, 1), disks, spec)
	s.app.stop(b)
	capacity, rate := 0.0, 0.9*burst
	for step := 0; step < 10; step++ {
		run := runAtRate(b, rate, d)
		b.Logf("%.1f MB/s for %s: kept %.1f MB/s, drained in %.1f s", rate, d, run.achieved, run.drain)
		if run.sustained(rate) {
			capacity = rate
			rate *= 1.15
			continue
		}
		if capacity > 0 {
			break // the step above the highest sustained rate failed
		}
		rate *= 0.85
	}
	if capacity == 0 {
		b.Fatalf("no rate from %.1f MB/s down was sustained", 0.9*burst)
	}
	half, most := runAtRate(b, capacity/2, d), runAtRate(b, capacity*0.8, d)
	b.ReportMetric(capacity, "pipeline_capacity_mb_per_s:MB/s")
	b.ReportMetric(half.percentile(50), "rpo_p50_s:s")
	b.ReportMetric(half.percentile(99), "rpo_p99_s:s")
	b.ReportMetric(most.percentile(50), "rpo_p50_s_at_80pct:s")
	b.ReportMetric(most.percentile(99), "rpo_p99_s_at_80pct:s")
	b.Logf("burst %.1f MB/s, capacity %.1f MB/s; RPO at 50%%: p50 %.2f s p99 %.2f s (%d write sets); at 80%%: p50 %.2f s p99 %.2f s (%d)",
		burst, capacity, half.percentile(50), half.percentile(99), len(half.rpo), most.percentile(50), most.percentile(99), len(most.rpo))
}

// scrubRun is pipelineRun on a protected group (its empty baseline applied first) with, when period is
// positive, the agent scrubbing its disks at that period meanwhile (the scrubber's tick: 1 s), so apply
// checks the target at every scrub record: end-to-end MB/s.
func scrubRun(b *testing.B, s *stack, ws []write, disks []replication.DiskRefSpec, spec string, period time.Duration) float64 {
	group := testenv.Unique("scrub")
	enable(b, s, group, spec)
	a := s.agent(b, group, disks)
	waitWatermark(b, s, group, a.Marker("crash", true), time.Minute) // Protected: apply checks scrubs
	ctx, cancel := context.WithCancel(context.Background())
	scrubbed := make(chan int, 1)
	go func() {
		n := 0
		defer func() { scrubbed <- n }()
		if period <= 0 {
			return
		}
		keys, sizes := []string{}, map[string]int64{}
		for _, d := range disks {
			keys, sizes[d.Key] = append(keys, d.Key), d.Spec.SizeBytes
		}
		sc := agent.NewScrubber(keys, sizes, period, time.Second)
		t := time.NewTicker(time.Second)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
				if _, _, _, _, err := sc.Step(a); err == nil {
					n++
				}
			}
		}
	}()
	start := time.Now()
	for _, w := range ws {
		if err := a.Write(w.disk, w.offset, w.data); err != nil {
			b.Fatal(err)
		}
	}
	final := a.Marker("crash", false)
	waitWatermark(b, s, group, final, 5*time.Minute)
	elapsed := time.Since(start)
	cancel()
	n := <-scrubbed
	a.Close(context.Background())
	if _, _, view := s.app.call(b, "GET", "/api/v1/groups/"+group, "test-key", ""); groupViewOf(view).State != "Protected" {
		b.Fatalf("the group after a scrubbed run: %s", view)
	}
	if period > 0 && n == 0 {
		b.Fatalf("no scrub record in %.1f s at the period %s", elapsed.Seconds(), period)
	}
	return float64(patternBytes(ws)) / (1 << 20) / elapsed.Seconds()
}

// BenchmarkFigure_scrub: the scrub's cost, as the pipeline's end-to-end MB/s with the agent scrubbing
// ÷ the same run without, interleaved BENCH_PAIRS times (default 3): scrub_cost_ratio at the default
// period (every disk once a day), and scrub_cost_ratio_fast with the whole 1 GiB scrubbed every 60 s
// (17 MiB/s of hashing on each side: a rate no deployment needs, to show the cost per byte).
func BenchmarkFigure_scrub(b *testing.B) {
	pairs := 3
	if n, err := strconv.Atoi(os.Getenv("BENCH_PAIRS")); err == nil && n > 0 {
		pairs = n
	}
	disks, spec := benchDisks(2, 2, 256<<20)
	ws := pattern(disks, 400, 1) // ~100 MiB
	s := defineStack(b, "0 0 0 1 1 *", testenv.Storage(b, "target"), testenv.Storage(b, "target"), testenv.Storage(b, "source"))
	s.app.start(b)
	var daily, fast []float64
	for i := 0; i < pairs; i++ {
		off := scrubRun(b, s, ws, disks, spec, 0)
		day := scrubRun(b, s, ws, disks, spec, agent.DefaultScrubPeriod)
		minute := scrubRun(b, s, ws, disks, spec, time.Minute)
		daily, fast = append(daily, day/off), append(fast, minute/off)
		b.Logf("run %d: off %.1f MB/s, daily %.1f MB/s, 1 GiB a minute %.1f MB/s", i+1, off, day, minute)
	}
	b.ReportMetric(median(daily), "scrub_cost_ratio:ratio")
	b.ReportMetric(median(fast), "scrub_cost_ratio_fast:ratio")
	b.Logf("scrub_cost_ratio runs %v, fast %v", daily, fast)
}
