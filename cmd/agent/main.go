// Command agent is Standby's source-side agent (outbound connections only): it replicates a
// consistency group's disks into the change stream — initial replication, live writes, markers,
// checksum resync — and reports progress to the API.
//
//	agent run      -group G [-spec FILE] [-workload-rate MBps -duration D -marker-interval D -truth FILE]
//	agent workload -group G [...]          run with the workload generator on (10 MB/s, a marker every 5 s,
//	                                       ground truth in .local/truth.jsonl unless told otherwise)
//	agent verify -group G -truth FILE      wait for convergence, then compare target disks and marker
//	                                       snapshots byte for byte with the sources and the ground truth
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/standby-dr/standby/shared/agent"
	"github.com/standby-dr/standby/shared/apiclient"
	"github.com/standby-dr/standby/shared/apiv1"
	"github.com/standby-dr/standby/shared/azconn"
	"github.com/standby-dr/standby/shared/eventhubs"
	"github.com/standby-dr/standby/shared/journal"
	"github.com/standby-dr/standby/shared/local"
	"github.com/standby-dr/standby/shared/pageblobs"
	"github.com/standby-dr/standby/shared/replication"
)

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: agent run|workload|verify [flags]")
		os.Exit(2)
	}
	var err error
	switch os.Args[1] {
	case "run":
		err = runCmd(os.Args[2:])
	case "workload":
		err = runCmd(append([]string{"-workload-rate", "10", "-marker-interval", "5s", "-truth", ".local/truth.jsonl"}, os.Args[2:]...))
	case "verify":
		err = verifyCmd(os.Args[2:])
	default:
		err = fmt.Errorf("unknown command %q (run, workload, verify)", os.Args[1])
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "agent:", err)
		os.Exit(1)
	}
}

// common are the flags both commands share.
type common struct {
	group, api, key, settings, state string
}

func (c *common) register(fs *flag.FlagSet) {
	fs.StringVar(&c.group, "group", "", "consistency group")
	fs.StringVar(&c.api, "api", envOr("STANDBY_API", "http://127.0.0.1:7071/api"), "API root")
	fs.StringVar(&c.key, "key", os.Getenv("STANDBY_API_KEY"), "API key (x-functions-key)")
	fs.StringVar(&c.settings, "settings", "", "a local.settings.json whose Values fill unset settings")
	fs.StringVar(&c.state, "state", ".local/agent", "agent state directory")
}

func (c *common) load() error {
	if c.group == "" {
		return errors.New("-group is required")
	}
	if c.settings == "" {
		return nil
	}
	data, err := os.ReadFile(c.settings)
	if err != nil {
		return err
	}
	var ls struct{ Values map[string]string }
	if err := json.Unmarshal(data, &ls); err != nil {
		return fmt.Errorf("%s: %w", c.settings, err)
	}
	for k, v := range ls.Values {
		if os.Getenv(k) == "" {
			os.Setenv(k, v)
		}
	}
	if c.key == "" {
		c.key = ls.Values["DevhostFunctionKey"]
	}
	return nil
}

func envOr(name, def string) string {
	if v := os.Getenv(name); v != "" {
		return v
	}
	return def
}

func newLogger() *slog.Logger {
	return slog.New(slog.NewJSONHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelInfo})).With("component", "agent")
}

// stores builds the journal store and the change publisher from the connection settings.
func stores(log *slog.Logger) (replication.JournalStore, replication.ChangePublisher, func(), error) {
	cs, err := azconn.Lookup(os.Getenv, "StandbyCacheStorage", "blob")
	if err != nil {
		return nil, nil, nil, err
	}
	svc, err := pageblobs.ServiceClient(cs)
	if err != nil {
		return nil, nil, nil, err
	}
	j := journal.New(svc, envOr("StandbyJournalContainer", "journal"))
	hub := envOr("StandbyChangeHub", "changes")
	es, err := azconn.Lookup(os.Getenv, "StandbyEventHubs", "")
	if err != nil {
		return nil, nil, nil, err
	}
	if local.IsConnection(es.ConnectionString) {
		b, err := local.OpenConnection(es.ConnectionString)
		if err != nil {
			return nil, nil, nil, err
		}
		return j, local.NewChangePublisher(b, hub), func() { b.Close() }, nil
	}
	p, err := eventhubs.NewPublisher(es, hub)
	if err != nil {
		return nil, nil, nil, err
	}
	return j, p, func() { p.Close(context.Background()) }, nil
}

// sourcePages is the source account holding pageblob: disks (StandbySourceStorage, else the cache account).
func sourcePages() (replication.PageStore, error) {
	name := "StandbySourceStorage"
	if os.Getenv(name) == "" && os.Getenv(name+"__blobServiceUri") == "" && os.Getenv(name+"__serviceUri") == "" {
		name = "StandbyCacheStorage"
	}
	return pageStore(name)
}

// pageStore is the page store of the account a connection setting names.
func pageStore(setting string) (*pageblobs.Store, error) {
	s, err := azconn.Lookup(os.Getenv, setting, "blob")
	if err != nil {
		return nil, err
	}
	svc, err := pageblobs.ServiceClient(s)
	if err != nil {
		return nil, err
	}
	return pageblobs.New(svc), nil
}

func runCmd(args []string) error {
	fs := flag.NewFlagSet("run", flag.ContinueOnError)
	var c common
	c.register(fs)
	specFile := fs.String("spec", "", "enable replication with this group spec (PUT) before starting")
	rate := fs.Float64("workload-rate", 0, "run the workload generator at this many MB/s (0: off)")
	duration := fs.Duration("duration", 0, "stop after this long (0: until interrupted)")
	markerEvery := fs.Duration("marker-interval", 0, "insert a crash-consistent marker this often (0: off)")
	truthFile := fs.String("truth", "", "append the sha256 of every disk at each marker here")
	batchBytes := fs.Int("batch-bytes", 4<<20, "seal a batch at this many bytes")
	batchDelay := fs.Duration("batch-delay", 50*time.Millisecond, "seal a batch after this long")
	compress := fs.Bool("compress", false, "zstd-compress payloads")
	seed := fs.Int64("seed", time.Now().UnixNano(), "workload seed")
	var preHooks, postHooks hookFlag
	fs.Var(&preHooks, "pre-hook", "VM=command run before an app-consistent marker (freeze); repeat per VM")
	fs.Var(&postHooks, "post-hook", "VM=command run after it (thaw); runs even when a pre hook failed")
	hookTimeout := fs.Duration("hook-timeout", 30*time.Second, "longest a hook may run before it is killed")
	appEvery := fs.Duration("app-marker-interval", 0, "take an app-consistent marker this often (0: only when cutpoints asks)")
	scanEvery := fs.Duration("scan-interval", -1, "hash file: disks this often to find writes made by other processes (default 5s, off with the workload, 0: off)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if err := c.load(); err != nil {
		return err
	}
	base := newLogger()
	log := base.With("group", c.group)
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	cl := apiclient.New(c.api, c.key)
	if *specFile != "" {
		data, err := os.ReadFile(*specFile)
		if err != nil {
			return err
		}
		var spec replication.GroupSpec
		if err := json.Unmarshal(data, &spec); err != nil {
			return fmt.Errorf("%s: %w", *specFile, err)
		}
		_, status, err := cl.PutGroup(ctx, c.group, spec)
		if err != nil {
			return fmt.Errorf("enabling replication: %w", err)
		}
		log.Info("replication enabled", "status", status)
	}
	view, err := cl.Group(ctx, c.group)
	if err != nil {
		return fmt.Errorf("reading the group: %w", err)
	}
	spec := replication.GroupSpec{VMs: view.VMs, Target: view.Target, Policy: view.Policy}
	j, pub, closeStores, err := stores(log)
	if err != nil {
		return err
	}
	defer closeStores()

	var truth *os.File
	if *truthFile != "" {
		if truth, err = os.OpenFile(*truthFile, os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o644); err != nil {
			return err
		}
		defer truth.Close()
	}
	sizes := map[string]int64{}
	for _, d := range spec.Disks() {
		sizes[d.Key] = d.Spec.SizeBytes
	}
	cfg := agent.Config{Group: c.group, Disks: spec.Disks(), Journal: j, Publisher: pub, StateDir: c.state, SeqFloor: max(view.Watermark, view.AgentSeq),
		MaxBatchBytes: *batchBytes, MaxBatchDelay: *batchDelay, Compress: *compress, Log: base}
	for _, d := range spec.Disks() {
		if strings.HasPrefix(d.Spec.Source, "pageblob:") && cfg.SourcePages == nil {
			if cfg.SourcePages, err = sourcePages(); err != nil {
				return err
			}
		}
	}
	if truth != nil {
		cfg.OnMarker = func(seq int64, consistency string, files map[string]*os.File) {
			rec := Truth{Seq: seq, Consistency: consistency, Time: time.Now().UTC(), Disks: map[string]string{}}
			for key, f := range files {
				rec.Disks[key], _ = agent.HashFile(f, sizes[key])
			}
			line, _ := json.Marshal(rec)
			truth.Write(append(line, '\n'))
		}
	}
	a, dirty, err := agent.Open(ctx, cfg)
	if err != nil {
		return err
	}
	// Writes other processes make to file: disks are found by hashing blocks; the first pass only
	// learns the disks and runs before any baseline reads them, so nothing falls between the two.
	if *scanEvery < 0 {
		*scanEvery = 5 * time.Second
		if *rate > 0 {
			*scanEvery = 0 // the workload writes through the write API: nothing to find
		}
	}
	var scanner *agent.Scanner
	var scanTick <-chan time.Time
	scanning := make(chan struct{}, 1)
	if *scanEvery > 0 {
		scanner = a.NewScanner()
		if _, err := scanner.Pass(ctx); err != nil {
			return err
		}
		t := time.NewTicker(*scanEvery)
		defer t.Stop()
		scanTick = t.C
	}

	// A sync either copies everything non-zero (the first baseline: the target is all zeros) or compares
	// checksums with the target (after an unclean stop, or a resync when the group stopped at a gap).
	type syncRequest struct{ resync, compare bool }
	syncs := make(chan syncRequest, 1)
	switch {
	case view.State == replication.StateInitialReplication && a.NextSeq() == 1:
		// Targets that already hold a copy (a reprotect's original disks) are compared block by block.
		syncs <- syncRequest{compare: len(view.Target.Disks) > 0}
	case dirty:
		log.Warn("the last run stopped uncleanly: writes may have been lost; comparing checksums with the target")
		syncs <- syncRequest{compare: true, resync: true}
	}
	syncing := false
	syncDone := make(chan error, 1)
	startSync := func(req syncRequest) {
		syncing = true
		var th agent.TargetHashes
		if req.compare {
			th = func(ctx context.Context, disk string) ([]string, error) { return cl.DiskHashes(ctx, c.group, disk) }
		}
		go func() {
			_, sent, err := a.Sync(ctx, th, req.resync)
			log.Info("sync finished", "resync", req.resync, "compared", req.compare, "bytesSent", sent, "err", err)
			syncDone <- err
		}()
	}

	runCtx, stopRun := context.WithCancel(ctx) // a planned failover's stop request ends the run early
	defer stopRun()
	if *duration > 0 {
		var cancel context.CancelFunc
		runCtx, cancel = context.WithTimeout(runCtx, *duration)
		defer cancel()
	}
	stopped := false
	workDone := make(chan agent.WorkloadStats, 1)
	if *rate > 0 {
		go func() {
			st, err := (&agent.Workload{Agent: a, Disks: spec.Disks(), BytesPerSecond: *rate * (1 << 20), Seed: *seed}).Run(runCtx)
			if err != nil {
				log.Error("workload stopped", "err", err)
			}
			workDone <- st
		}()
	}
	var markerTick <-chan time.Time
	if *markerEvery > 0 {
		t := time.NewTicker(*markerEvery)
		defer t.Stop()
		markerTick = t.C
	}
	heartbeat := time.NewTicker(time.Second)
	defer heartbeat.Stop()
	started := time.Now()
	hooks := agent.Hooks{Timeout: *hookTimeout}
	for _, vm := range spec.VMs {
		hooks.VMs = append(hooks.VMs, agent.Hook{VM: vm.Name, Pre: preHooks[vm.Name], Post: postHooks[vm.Name]})
	}
	appRunning := make(chan struct{}, 1)
	appMarker := func() {
		select {
		case appRunning <- struct{}{}:
		default:
			return // one is being taken
		}
		go func() {
			defer func() { <-appRunning }()
			if _, err := a.AppMarker(ctx, hooks); err != nil {
				if rerr := cl.Event(ctx, c.group, "app-consistency", err.Error()); rerr != nil {
					log.Warn("reporting the hook failure", "err", rerr)
				}
			}
		}()
	}
	var appTick <-chan time.Time
	if *appEvery > 0 {
		t := time.NewTicker(*appEvery)
		defer t.Stop()
		appTick = t.C
	}
	var markerHonored, appHonored time.Time // the last requests put into the stream
	report := func(ctx context.Context) (bool, error) {
		st := a.Stats()
		rep := apiReport(st)
		rep.Stopped = stopped
		in, err := cl.Heartbeat(ctx, c.group, rep)
		if err != nil {
			return false, err
		}
		if in.Stop && !stopped && runCtx.Err() == nil {
			log.Warn("planned failover: stopping writes, flushing, marking the end")
			stopRun()
		}
		if req := in.MarkerRequestedAt; req != nil && req.After(markerHonored) && !syncing {
			markerHonored = *req
			log.Info("marker requested by cutpoints", "seq", a.Marker("crash", false))
		}
		if req := in.AppMarkerRequestedAt; req != nil && req.After(appHonored) && !syncing {
			appHonored = *req
			log.Info("app-consistent marker requested by cutpoints")
			appMarker()
		}
		return in.Resync, nil
	}
loop:
	for {
		select {
		case req := <-syncs:
			if !syncing {
				startSync(req)
			}
		case err := <-syncDone:
			syncing = false
			if err != nil && ctx.Err() == nil {
				log.Error("sync failed", "err", err)
			}
		case <-scanTick:
			select {
			case scanning <- struct{}{}:
				go func() {
					defer func() { <-scanning }()
					if sent, err := scanner.Pass(ctx); err != nil {
						log.Warn("scan failed", "err", err)
					} else if sent > 0 {
						log.Info("changes found by scanning", "bytes", sent)
					}
				}()
			default: // the last pass is still running
			}
		case <-appTick:
			if !syncing {
				appMarker()
			}
		case <-markerTick:
			seq := a.Marker("crash", false)
			log.Info("marker", "seq", seq)
		case <-heartbeat.C:
			resync, err := report(ctx)
			if err != nil {
				log.Warn("heartbeat failed", "err", err)
			} else if resync && !syncing {
				log.Warn("the group needs a resync; comparing checksums with the target")
				startSync(syncRequest{resync: true, compare: true})
			}
			if st := a.Stats(); st.BaselineTotal > 0 && st.BaselineDone < st.BaselineTotal {
				showProgress(log, st)
			}
		case <-runCtx.Done():
			break loop
		}
	}
	var ws agent.WorkloadStats
	if *rate > 0 {
		ws = <-workDone
	}
	for syncing && ctx.Err() == nil { // let a running baseline finish before the final marker
		if err := <-syncDone; err != nil {
			log.Error("sync failed", "err", err)
		}
		syncing = false
	}
	if scanner != nil {
		scanning <- struct{}{} // let a running scan finish: its blocks belong before the final marker
		if ctx.Err() == nil {  // and find what was written since: the writers have stopped
			sent, err := scanner.Pass(ctx)
			for try := 1; err != nil && try < 3; try++ {
				log.Warn("final scan failed; trying again", "err", err)
				time.Sleep(time.Second)
				sent, err = scanner.Pass(ctx)
			}
			if err != nil { // without it the final marker would leave writes out: do not report a stop
				a.Close(context.Background())
				return fmt.Errorf("final scan: writes since the last scan are not in the stream, so no stop is reported: %w", err)
			}
			log.Info("final scan", "bytes", sent)
		}
	}
	appRunning <- struct{}{} // and a running app-consistent marker (its post hooks thaw the VMs)
	final := a.Marker("crash", false)
	closeCtx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if err := a.Close(closeCtx); err != nil {
		return err
	}
	stopped = true // everything up to the final marker is published
	if _, err := report(closeCtx); err != nil {
		log.Warn("final report failed", "err", err)
	}
	st := a.Stats()
	elapsed := time.Since(started).Seconds()
	summary := map[string]any{"group": c.group, "finalMarker": final, "lastPublished": st.LastPublished, "writes": st.Writes,
		"bytesWritten": st.BytesWritten, "batches": st.Batches, "markers": st.Markers, "publishedBytes": st.PublishedBytes,
		"seconds": elapsed, "workloadWrites": ws.Writes, "workloadMBps": float64(ws.Bytes) / (1 << 20) / elapsed}
	out, _ := json.Marshal(summary)
	fmt.Println(string(out))
	return nil
}

// hookFlag collects VM=command flags.
type hookFlag map[string]string

func (h *hookFlag) String() string { return fmt.Sprint(map[string]string(*h)) }

func (h *hookFlag) Set(v string) error {
	vm, command, ok := strings.Cut(v, "=")
	if !ok || vm == "" || strings.TrimSpace(command) == "" {
		return fmt.Errorf("%q: want VM=command", v)
	}
	if *h == nil {
		*h = hookFlag{}
	}
	(*h)[vm] = command
	return nil
}

// stderrIsTerminal decides between a progress bar and log lines.
var stderrIsTerminal = func() bool {
	info, err := os.Stderr.Stat()
	return err == nil && info.Mode()&os.ModeCharDevice != 0
}()

// showProgress shows baseline progress: a bar on a terminal, a structured line otherwise.
func showProgress(log *slog.Logger, st agent.Stats) {
	pct := 100 * float64(st.BaselineDone) / float64(st.BaselineTotal)
	eta := 0.0
	if st.BaselineRate > 0 {
		eta = float64(st.BaselineTotal-st.BaselineDone) / st.BaselineRate
	}
	if stderrIsTerminal {
		const width = 30
		filled := int(pct / 100 * width)
		fmt.Fprintf(os.Stderr, "\rbaseline [%s%s] %5.1f%%  %6.1f MB/s  ETA %3.0fs ", strings.Repeat("#", filled),
			strings.Repeat(" ", width-filled), pct, st.BaselineRate/(1<<20), eta)
		return
	}
	log.Info("baseline progress", "percent", fmt.Sprintf("%.1f", pct), "doneBytes", st.BaselineDone, "totalBytes", st.BaselineTotal,
		"rateMBps", fmt.Sprintf("%.1f", st.BaselineRate/(1<<20)), "etaSeconds", fmt.Sprintf("%.0f", eta))
}

// Truth is one line of the ground-truth file: every disk's sha256 at a marker.
type Truth struct {
	Seq         int64             `json:"seq"`
	Consistency string            `json:"consistency"`
	Time        time.Time         `json:"time"`
	Disks       map[string]string `json:"disks"`
}

func verifyCmd(args []string) error {
	fs := flag.NewFlagSet("verify", flag.ContinueOnError)
	var c common
	c.register(fs)
	truthFile := fs.String("truth", "", "ground truth written by agent run -truth")
	timeout := fs.Duration("timeout", 5*time.Minute, "how long to wait for the target to converge")
	container := fs.String("container", "", "compare the disks in this container instead (a test failover's or a failover's)")
	seq := fs.Int64("seq", 0, "with -container: compare with the ground truth at this marker instead of the sources")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if err := c.load(); err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), *timeout)
	defer cancel()
	cl := apiclient.New(c.api, c.key)
	if *container != "" {
		view, err := cl.Group(ctx, c.group)
		if err != nil {
			return err
		}
		return verifyContainer(ctx, c, view, *container, *truthFile, *seq)
	}
	data, err := os.ReadFile(fmt.Sprintf("%s/%s.state.json", c.state, c.group))
	if err != nil {
		return fmt.Errorf("agent state: %w", err)
	}
	var st struct {
		Published int64 `json:"published"`
	}
	json.Unmarshal(data, &st)
	start := time.Now()
	var view apiv1.GroupView
	for {
		view, err = cl.Group(ctx, c.group)
		if err != nil {
			return err
		}
		if view.Watermark >= st.Published {
			break
		}
		if view.State == replication.StateResyncRequired {
			return fmt.Errorf("group needs a resync: %s", view.Reason)
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("target did not converge: watermark %d, agent published %d", view.Watermark, st.Published)
		case <-time.After(200 * time.Millisecond):
		}
	}
	fmt.Printf("converged: watermark %d = agent's last sequence, %.1fs after the agent stopped\n", view.Watermark, time.Since(start).Seconds())
	return verify(ctx, c, view, *truthFile)
}

func apiReport(st agent.Stats) apiv1.AgentReport {
	return apiv1.AgentReport{Seq: st.LastPublished, BaselineDoneBytes: st.BaselineDone, BaselineTotalBytes: st.BaselineTotal,
		BaselineRateBps: st.BaselineRate, BaselineBlocks: st.BaselineBlocks, BaselineBlocksSent: st.BaselineBlocksSent}
}
