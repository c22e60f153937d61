package agent

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"time"

	"github.com/standby-dr/standby/shared/api/apiv1"
	"github.com/standby-dr/standby/shared/replication"
)

// API is what a running agent asks of the Standby API (*apiclient.Client satisfies it).
type API interface {
	PutGroup(ctx context.Context, group string, spec apiv1.GroupSpec) (apiv1.GroupView, int, error)
	Group(ctx context.Context, group string) (apiv1.GroupView, error)
	Heartbeat(ctx context.Context, group string, rep apiv1.AgentReport) (apiv1.AgentInstructions, error)
	DiskHashes(ctx context.Context, group, disk string, blockSize int64) ([]string, error)
	Event(ctx context.Context, group, kind, message string) error
	// StreamKey is the group's change-stream key ("" for a group without one).
	StreamKey(ctx context.Context, group string) (string, error)
}

// RunConfig configures a run of the agent (the options of agent run).
type RunConfig struct {
	Group string
	API   API
	// Spec, when set, enables replication with it (PUT) before the run starts.
	Spec *replication.GroupSpec
	// LocalSources maps a disk ("vm/disk") to the file or device this agent reads it from. The agent
	// opens only paths its own configuration gives — these, or Spec's — never one the API names.
	LocalSources map[string]string
	// Connect opens the journal and the change stream, once the group is read; close releases them.
	Connect func() (j replication.JournalStore, p replication.ChangePublisher, close func(), err error)
	// SourcePages opens the source account; it is called only when a disk is a pageblob: one.
	SourcePages func() (replication.PageStore, error)
	// DiskSnapshots opens the source region's compute; it is called only when a disk is a managed: one.
	DiskSnapshots func() (replication.DiskSnapshots, error)
	// Machine is where the agent looks at the VM it runs on, to fill the OS disk's boot properties of
	// the spec it enables (describe.go).
	Machine  Machine
	StateDir string
	// NBDAddr is where the nbd: disks are served as NBD exports "<vm>/<disk>": "unix:<path>" or, with
	// NBDAllowTCP, a loopback host:port ("": DefaultNBDAddr). TCP is every local user's (no
	// authentication), so it is only ever taken when asked for.
	NBDAddr     string
	NBDAllowTCP bool
	// WorkloadRate runs the workload generator (seeded with Seed) at this many MB/s (0: off).
	WorkloadRate float64
	// WorkloadDataOnly keeps the workload off the OS disks (role "os"), so a VM's bootable disk stays
	// bootable while its data disks churn.
	WorkloadDataOnly bool
	Seed             int64
	// Duration stops the run after this long (0: when ctx ends or a planned failover stops it).
	Duration time.Duration
	// MarkerInterval inserts a crash-consistent marker this often (0: off); AppMarkerInterval takes an
	// app-consistent one this often (0: only when cutpoints asks).
	MarkerInterval, AppMarkerInterval time.Duration
	// TruthFile, when set, gets a Truth line appended at each marker.
	TruthFile  string
	BatchBytes int
	BatchDelay time.Duration
	Compress   bool
	// PreHooks and PostHooks map a VM to the command run before (freeze) and after (thaw) an
	// app-consistent marker; each may run HookTimeout at most.
	PreHooks, PostHooks map[string]string
	HookTimeout         time.Duration
	// ScanInterval hashes file: disks and snapshots pageblob: and managed: disks this often to find
	// writes other processes make (0: off; negative: 5 s, or off with the workload, which writes through
	// the write API; for a group with managed: disks, replication.SnapshotSpacing, which Azure's rate
	// allows indefinitely).
	ScanInterval time.Duration
	// ScrubPeriod is how long a full scrub pass over the disks whose writes the agent takes lasts
	// (scrub.go; 0: DefaultScrubPeriod, negative: off); ScrubTick paces it (0: 10 s).
	ScrubPeriod, ScrubTick time.Duration
	Log                    *slog.Logger
	// Progress shows the baseline's progress at each heartbeat while it runs (nil: not shown).
	Progress func(log *slog.Logger, st Stats)
}

// Summary is what a run did (its JSON is agent run's output).
type Summary struct {
	Batches        int64   `json:"batches"`
	BytesWritten   int64   `json:"bytesWritten"`
	FinalMarker    int64   `json:"finalMarker"`
	Group          string  `json:"group"`
	LastPublished  int64   `json:"lastPublished"`
	Markers        int64   `json:"markers"`
	PublishedBytes int64   `json:"publishedBytes"`
	Seconds        float64 `json:"seconds"`
	// SnapshotBytesRead is what the agent read of pageblob: and managed: disks' snapshots.
	SnapshotBytesRead int64   `json:"snapshotBytesRead"`
	WorkloadMBps      float64 `json:"workloadMBps"`
	WorkloadWrites    int64   `json:"workloadWrites"`
	Writes            int64   `json:"writes"`
}

// syncRequest asks for a sync: it either copies everything non-zero (the first baseline: the target is
// all zeros) or compares checksums with the target (after an unclean stop, or a resync when the group
// stopped at a gap).
type syncRequest struct{ resync, compare bool }

// runner is one run's state; only the loop's goroutine touches its fields after the start.
type runner struct {
	cfg  RunConfig
	log  *slog.Logger
	a    *Agent
	view apiv1.GroupView
	// streamKey signs what the agent sends (the group's, from the API).
	streamKey []byte
	spec      replication.GroupSpec
	hooks     Hooks

	scanner    *Scanner
	scanning   chan struct{} // holds a token while a scan pass runs
	appRunning chan struct{} // holds a token while an app-consistent marker is taken
	syncs      chan syncRequest
	syncDone   chan error
	syncing    bool

	runCtx  context.Context // ends the loop: the duration, ctx, or a planned failover's stop
	stopRun context.CancelFunc
	stopped bool // everything up to the final marker is published

	markerHonored, appHonored time.Time // the last requests put into the stream

	scrubs *Scrubber

	tickers                                             []*time.Ticker
	scanTick, markerTick, appTick, heartbeat, scrubTick <-chan time.Time
}

// Run replicates the group until the duration passes, ctx ends or a planned failover stops it: the
// first sync, writes (the workload's, or other processes' found by scanning), markers, heartbeats and
// what they ask for; then a final scan, a final marker and a last report. It returns the summary.
func Run(ctx context.Context, cfg RunConfig) (Summary, error) {
	r := &runner{cfg: cfg, log: cfg.Log.With("group", cfg.Group), scanning: make(chan struct{}, 1),
		appRunning: make(chan struct{}, 1), syncs: make(chan syncRequest, 1), syncDone: make(chan error, 1)}
	defer r.stopTickers()
	if err := r.readGroup(ctx); err != nil {
		return Summary{}, err
	}
	j, pub, closeStores, err := cfg.Connect()
	if err != nil {
		return Summary{}, err
	}
	defer closeStores()
	dirty, closeTruth, err := r.open(ctx, j, pub)
	defer closeTruth()
	if err != nil {
		return Summary{}, err
	}
	stopNBD, err := r.serveNBD(ctx)
	if err != nil {
		return Summary{}, err
	}
	defer stopNBD()
	// Writes other processes make to file: disks are found by hashing blocks; the first pass only
	// learns the disks and runs before any baseline reads them, so nothing falls between the two.
	if err := r.startScanning(ctx); err != nil {
		return Summary{}, err
	}
	r.queueFirstSync(dirty)
	return r.run(ctx)
}

// readGroup enables replication when asked to, and reads the group.
func (r *runner) readGroup(ctx context.Context) error {
	if r.cfg.Spec != nil {
		spec := *r.cfg.Spec
		spec.VMs = cloneVMs(spec.VMs)
		if err := r.describeOSDisks(ctx, &spec); err != nil {
			return fmt.Errorf("describing the OS disks: %w", err)
		}
		_, status, err := r.cfg.API.PutGroup(ctx, r.cfg.Group, apiv1.Convert[apiv1.GroupSpec](spec))
		if err != nil {
			return fmt.Errorf("enabling replication: %w", err)
		}
		r.log.Info("replication enabled", "status", status)
	}
	view, err := r.cfg.API.Group(ctx, r.cfg.Group)
	if err != nil {
		return fmt.Errorf("reading the group: %w", err)
	}
	r.view, r.spec = view, SpecOf(view)
	if err := trustLocalSources(&r.spec, r.cfg.Spec, r.cfg.LocalSources); err != nil {
		return err
	}
	for _, c := range r.spec.Captures() {
		if !c.CrashConsistent {
			r.log.Warn("disk not captured crash-consistently", "disk", c.Disk, "mode", c.Mode, "why", c.Note)
		}
	}
	key, err := r.cfg.API.StreamKey(ctx, r.cfg.Group)
	if err == nil {
		r.streamKey, err = replication.DecodeStreamKey(key)
	}
	if err != nil {
		return fmt.Errorf("reading the group's stream key: %w", err)
	}
	return nil
}

// trustLocalSources makes every file: and nbd: source one this agent's own configuration gives: the
// local source for the disk, else the local spec's; a path only the API names is refused.
func trustLocalSources(spec, local *replication.GroupSpec, sources map[string]string) error {
	for i := range spec.VMs {
		for j := range spec.VMs[i].Disks {
			d := &spec.VMs[i].Disks[j]
			key := replication.DiskKey(spec.VMs[i].Name, d.Name)
			src := d.Parsed()
			if path, ok := sources[key]; ok { // the path is the agent's; how it is captured, the group's
				kind := replication.SourceFile
				if src.Kind == replication.SourceNBD {
					kind = replication.SourceNBD
				}
				d.Source = replication.Source{Kind: kind, Ref: path}.String()
				continue
			}
			if !src.OnVM() {
				continue
			}
			if local == nil || localSource(local, key) != d.Source {
				return fmt.Errorf("disk %s: the group names %s, which this agent's own configuration does not: give it with -source %s=<path> (or -spec)", key, d.Source, key)
			}
		}
	}
	for key := range sources {
		if localSource(spec, key) == "" {
			return fmt.Errorf("-source %s: the group has no such disk", key)
		}
	}
	return nil
}

func localSource(spec *replication.GroupSpec, key string) string {
	for _, d := range spec.Disks() {
		if d.Key == key {
			return d.Spec.Source
		}
	}
	return ""
}

// open opens the ground-truth file (closeTruth closes it; it is never nil) and the agent.
func (r *runner) open(ctx context.Context, j replication.JournalStore, pub replication.ChangePublisher) (dirty bool, closeTruth func(), err error) {
	closeTruth = func() {}
	cfg := Config{Group: r.cfg.Group, Disks: r.spec.Disks(), Journal: j, Publisher: pub, StateDir: r.cfg.StateDir,
		SeqFloor: max(r.view.Watermark, r.view.AgentSeq), MaxBatchBytes: r.cfg.BatchBytes, MaxBatchDelay: r.cfg.BatchDelay,
		Compress: r.cfg.Compress, Log: r.cfg.Log, StreamKey: r.streamKey}
	if r.cfg.TruthFile != "" {
		f, err := os.OpenFile(r.cfg.TruthFile, os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o644)
		if err != nil {
			return false, closeTruth, err
		}
		closeTruth = func() { f.Close() }
		sizes := map[string]int64{}
		for _, d := range cfg.Disks {
			sizes[d.Key] = d.Spec.SizeBytes
		}
		cfg.OnMarker = truthRecorder(f, sizes)
	}
	for _, d := range cfg.Disks {
		kind := d.Spec.Parsed().Kind
		if kind == replication.SourcePageBlob && cfg.SourcePages == nil && r.cfg.SourcePages != nil {
			if cfg.SourcePages, err = r.cfg.SourcePages(); err != nil {
				return false, closeTruth, err
			}
		}
		if kind == replication.SourceManaged && cfg.DiskSnapshots == nil && r.cfg.DiskSnapshots != nil {
			if cfg.DiskSnapshots, err = r.cfg.DiskSnapshots(); err != nil {
				return false, closeTruth, err
			}
		}
	}
	r.a, dirty, err = Open(ctx, cfg)
	return dirty, closeTruth, err
}

// startScanning takes the scanner's first pass and starts its ticker, when scanning is on.
func (r *runner) startScanning(ctx context.Context) error {
	every := r.cfg.ScanInterval
	if every < 0 {
		every = 5 * time.Second
		if r.cfg.WorkloadRate > 0 {
			every = 0 // the workload writes through the write API: nothing to find
		}
		for _, d := range r.spec.Disks() {
			if d.Spec.Parsed().Kind == replication.SourceManaged {
				every = replication.SnapshotSpacing
			}
		}
	}
	if every <= 0 {
		return nil
	}
	r.scanner = r.a.NewScanner()
	if _, err := r.scanner.Pass(ctx); err != nil {
		return err
	}
	r.scanTick = r.ticker(every)
	return nil
}

// queueFirstSync asks for the baseline of a new group, or a checksum resync after an unclean stop.
func (r *runner) queueFirstSync(dirty bool) {
	switch {
	case replication.State(r.view.State) == replication.StateInitialReplication && r.a.NextSeq() == 1:
		// Targets that already hold a copy (a reprotect's original disks) are compared block by block.
		r.syncs <- syncRequest{compare: len(r.view.Target.Disks) > 0}
	case dirty:
		r.log.Warn("the last run stopped uncleanly: writes may have been lost; comparing checksums with the target")
		r.syncs <- syncRequest{compare: true, resync: true}
	}
}

// ticker ticks every so often (a nil channel, which never fires, when every is not positive).
func (r *runner) ticker(every time.Duration) <-chan time.Time {
	if every <= 0 {
		return nil
	}
	t := time.NewTicker(every)
	r.tickers = append(r.tickers, t)
	return t.C
}

func (r *runner) stopTickers() {
	for _, t := range r.tickers {
		t.Stop()
	}
}

func (r *runner) summary(final int64, ws WorkloadStats, elapsed float64) Summary {
	st := r.a.Stats()
	return Summary{Group: r.cfg.Group, FinalMarker: final, LastPublished: st.LastPublished, Writes: st.Writes, BytesWritten: st.BytesWritten,
		Batches: st.Batches, Markers: st.Markers, PublishedBytes: st.PublishedBytes, Seconds: elapsed, WorkloadWrites: ws.Writes,
		SnapshotBytesRead: st.SnapshotBytesRead,
		WorkloadMBps:      float64(ws.Bytes) / (1 << 20) / elapsed}
}

// apiReport is the heartbeat's report of the agent's counters.
func apiReport(st Stats, lastError string) apiv1.AgentReport {
	return apiv1.AgentReport{Seq: st.LastPublished, BaselineDoneBytes: st.BaselineDone, BaselineTotalBytes: st.BaselineTotal,
		BaselineRateBps: st.BaselineRate, BaselineBlocks: st.BaselineBlocks, BaselineBlocksSent: st.BaselineBlocksSent, LastError: lastError}
}

// SpecOf is the group's spec as a group view shows it, in the domain's types.
func SpecOf(view apiv1.GroupView) replication.GroupSpec {
	return apiv1.Convert[replication.GroupSpec](apiv1.GroupSpec{VMs: view.VMs, Target: view.Target, Policy: view.Policy})
}

// cloneVMs copies the VMs and their disks, so that filling them leaves the caller's spec as it was.
func cloneVMs(vms []replication.VMSpec) []replication.VMSpec {
	out := make([]replication.VMSpec, len(vms))
	for i, vm := range vms {
		vm.Disks = append([]replication.DiskSpec(nil), vm.Disks...)
		out[i] = vm
	}
	return out
}
