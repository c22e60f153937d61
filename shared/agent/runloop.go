package agent

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/standby-dr/standby/shared/api/apiv1"
	"github.com/standby-dr/standby/shared/replication"
)

// run runs the loop until the run ends, then finishes: the final scan, marker and report.
func (r *runner) run(ctx context.Context) (Summary, error) {
	runCtx, stopRun := context.WithCancel(ctx) // a planned failover's stop request ends the run early
	defer stopRun()
	if r.cfg.Duration > 0 {
		var cancel context.CancelFunc
		runCtx, cancel = context.WithTimeout(runCtx, r.cfg.Duration)
		defer cancel()
	}
	r.runCtx, r.stopRun = runCtx, stopRun
	workDone := r.startWorkload()
	r.markerTick = r.ticker(r.cfg.MarkerInterval)
	r.heartbeat = r.ticker(time.Second)
	started := time.Now()
	r.hooks = Hooks{Timeout: r.cfg.HookTimeout}
	for _, vm := range r.spec.VMs {
		r.hooks.VMs = append(r.hooks.VMs, Hook{VM: vm.Name, Pre: r.cfg.PreHooks[vm.Name], Post: r.cfg.PostHooks[vm.Name]})
	}
	r.appTick = r.ticker(r.cfg.AppMarkerInterval)
	r.startScrubs()
	r.loop(ctx)
	var ws WorkloadStats
	if r.cfg.WorkloadRate > 0 {
		ws = <-workDone
	}
	final, err := r.finish(ctx)
	if err != nil {
		return Summary{}, err
	}
	return r.summary(final, ws, time.Since(started).Seconds()), nil
}

// startScrubs plans the scrub over the disks whose every write the agent takes: agent and nbd
// sources, and file: sources when nothing scans them (the workload's, which writes through the agent).
func (r *runner) startScrubs() {
	period, tick := r.cfg.ScrubPeriod, r.cfg.ScrubTick
	if period < 0 {
		return
	}
	if period == 0 {
		period = DefaultScrubPeriod
	}
	if tick <= 0 {
		tick = 10 * time.Second
	}
	var disks []string
	sizes := map[string]int64{}
	for _, d := range r.spec.Disks() {
		kind := d.Spec.Parsed().Kind
		if kind == replication.SourceAgent || kind == replication.SourceNBD || (kind == replication.SourceFile && r.scanTick == nil) {
			disks, sizes[d.Key] = append(disks, d.Key), d.Spec.SizeBytes
		}
	}
	if len(disks) == 0 {
		return
	}
	r.scrubs = NewScrubber(disks, sizes, period, tick)
	r.scrubTick = r.ticker(tick)
	r.log.Info("scrub planned", "disks", len(disks), "period", period, "slice", r.scrubs.slice)
}

// startWorkload starts the workload generator when asked for; the channel gets its counts when it stops.
func (r *runner) startWorkload() <-chan WorkloadStats {
	done := make(chan WorkloadStats, 1)
	if r.cfg.WorkloadRate > 0 {
		go func() {
			st, err := (&Workload{Agent: r.a, Disks: r.workloadDisks(), BytesPerSecond: r.cfg.WorkloadRate * (1 << 20), Seed: r.cfg.Seed}).Run(r.runCtx)
			if err != nil {
				r.log.Error("workload stopped", "err", err)
			}
			done <- st
		}()
	}
	return done
}

// loop serves syncs, scans, markers and heartbeats until the run ends.
func (r *runner) loop(ctx context.Context) {
	for {
		select {
		case req := <-r.syncs:
			if !r.syncing {
				r.startSync(ctx, req)
			}
		case err := <-r.syncDone:
			r.syncing = false
			if err != nil && ctx.Err() == nil {
				r.log.Error("sync failed", "err", err)
				r.a.NoteError("sync", err)
			}
		case <-r.scanTick:
			r.scan(ctx)
		case <-r.appTick:
			if !r.syncing {
				r.appMarker(ctx)
			}
		case <-r.markerTick:
			seq := r.a.Marker("crash", false)
			r.log.Info("marker", "seq", seq)
		case <-r.scrubTick:
			r.scrubStep(ctx)
		case <-r.heartbeat:
			r.beat(ctx)
		case <-r.runCtx.Done():
			return
		}
	}
}

func (r *runner) startSync(ctx context.Context, req syncRequest) {
	r.syncing = true
	var th TargetHashes
	if req.compare {
		th = func(ctx context.Context, disk string) ([]string, error) {
			return r.cfg.API.DiskHashes(ctx, r.cfg.Group, disk, replication.BlockSize)
		}
	}
	go func() {
		_, sent, err := r.a.Sync(ctx, th, req.resync)
		r.log.Info("sync finished", "resync", req.resync, "compared", req.compare, "bytesSent", sent, "err", err)
		r.syncDone <- err
	}()
}

// scan starts a scan pass unless the last one is still running.
func (r *runner) scan(ctx context.Context) {
	select {
	case r.scanning <- struct{}{}:
		go func() {
			defer func() { <-r.scanning }()
			if sent, err := r.scanner.Pass(ctx); err != nil {
				r.log.Warn("scan failed", "err", err)
			} else if sent > 0 {
				r.log.Info("changes found by scanning", "bytes", sent)
			}
		}()
	default: // the last pass is still running
	}
}

// appMarker takes an app-consistent marker in the background, unless one is being taken; a hook
// failure is reported to the API as an event.
func (r *runner) appMarker(ctx context.Context) {
	select {
	case r.appRunning <- struct{}{}:
	default:
		return // one is being taken
	}
	go func() {
		defer func() { <-r.appRunning }()
		if _, err := r.a.AppMarker(ctx, r.hooks); err != nil {
			if rerr := r.cfg.API.Event(ctx, r.cfg.Group, "app-consistency", err.Error()); rerr != nil {
				r.log.Warn("reporting the hook failure", "err", rerr)
			}
		}
	}()
}

// beat reports to the API, starts a resync when it asks for one or the journal held another batch
// signed with the group's key where this agent's belonged, and shows the baseline's progress.
func (r *runner) beat(ctx context.Context) {
	resync, err := r.report(ctx)
	if errors.Is(err, apiv1.ErrBadRequest) {
		// The API refuses the report itself: its sequence runs past what the group can have.
		resync, err = r.renumber(ctx, err)
	}
	if err != nil {
		r.log.Warn("heartbeat failed", "err", err)
		r.a.NoteError("reporting to the API", err)
	}
	if seq := r.a.TakeConflict(); seq > 0 {
		msg := fmt.Sprintf("the journal holds another batch signed with the group's key at sequence %d: someone else holds the stream key (issue a new agent key); resyncing", seq)
		if rerr := r.cfg.API.Event(ctx, r.cfg.Group, "journal-conflict", msg); rerr != nil {
			r.log.Warn("reporting the journal conflict", "err", rerr)
		}
		resync = true
	}
	if resync && !r.syncing {
		r.log.Warn("the group needs a resync; comparing checksums with the target")
		r.startSync(ctx, syncRequest{resync: true, compare: true})
	}
	if st := r.a.Stats(); st.BaselineTotal > 0 && st.BaselineDone < st.BaselineTotal && r.cfg.Progress != nil {
		r.cfg.Progress(r.log, st)
	}
}

// renumber answers a refused report: it reads the group's sequence and, when the agent's numbering
// runs past what the API accepts, numbers on from the group's (Agent.Renumber) and asks for a resync.
func (r *runner) renumber(ctx context.Context, refused error) (bool, error) {
	view, err := r.cfg.API.Group(ctx, r.cfg.Group)
	if err != nil {
		return false, fmt.Errorf("%w; and reading the group's sequence: %v", refused, err)
	}
	renumbered, err := r.a.Renumber(max(view.Watermark, view.AgentSeq))
	if err != nil || !renumbered {
		return false, errors.Join(refused, err)
	}
	return true, nil
}

// report sends a heartbeat and follows its instructions: a planned failover's stop, markers cutpoints
// asks for. It returns whether the group needs a resync.
func (r *runner) report(ctx context.Context) (bool, error) {
	rep := apiReport(r.a.Stats(), r.a.LastError())
	rep.Stopped = r.stopped
	in, err := r.cfg.API.Heartbeat(ctx, r.cfg.Group, rep)
	if err != nil {
		return false, err
	}
	if in.Stop && !r.stopped && r.runCtx.Err() == nil {
		r.log.Warn("planned failover: stopping writes, flushing, marking the end")
		r.stopRun()
	}
	if req := in.MarkerRequestedAt; req != nil && req.After(r.markerHonored) && !r.syncing {
		r.markerHonored = *req
		r.log.Info("marker requested by cutpoints", "seq", r.a.Marker("crash", false))
	}
	if req := in.AppMarkerRequestedAt; req != nil && req.After(r.appHonored) && !r.syncing {
		r.appHonored = *req
		r.log.Info("app-consistent marker requested by cutpoints")
		r.appMarker(ctx)
	}
	return in.Resync, nil
}

// finish lets running work end, then puts the final marker in, closes the agent (everything up to the
// marker is published) and reports the stop. It returns the final marker.
func (r *runner) finish(ctx context.Context) (int64, error) {
	for r.syncing && ctx.Err() == nil { // let a running baseline finish before the final marker
		if err := <-r.syncDone; err != nil {
			r.log.Error("sync failed", "err", err)
		}
		r.syncing = false
	}
	if err := r.finalScan(ctx); err != nil {
		return 0, err
	}
	r.appRunning <- struct{}{} // and a running app-consistent marker (its post hooks thaw the VMs)
	final := r.a.Marker("crash", false)
	closeCtx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if err := r.a.Close(closeCtx); err != nil {
		return 0, err
	}
	r.stopped = true
	if _, err := r.report(closeCtx); err != nil {
		r.log.Warn("final report failed", "err", err)
	}
	return final, nil
}

// finalScan waits for a running scan (its blocks belong before the final marker) and finds what was
// written since: the writers have stopped.
func (r *runner) finalScan(ctx context.Context) error {
	if r.scanner == nil {
		return nil
	}
	r.scanning <- struct{}{}
	if ctx.Err() != nil {
		return nil
	}
	sent, err := r.scanner.Pass(ctx)
	for try := 1; err != nil && try < 3; try++ {
		r.log.Warn("final scan failed; trying again", "err", err)
		time.Sleep(time.Second)
		sent, err = r.scanner.Pass(ctx)
	}
	if err != nil { // without it the final marker would leave writes out: do not report a stop
		r.a.Close(context.Background())
		return fmt.Errorf("final scan: writes since the last scan are not in the stream, so no stop is reported: %w", err)
	}
	r.log.Info("final scan", "bytes", sent)
	return nil
}

// workloadDisks are the disks the workload writes: every one, or the data disks alone.
func (r *runner) workloadDisks() []replication.DiskRefSpec {
	var disks []replication.DiskRefSpec
	for _, d := range r.spec.Disks() {
		if !r.cfg.WorkloadDataOnly || d.Spec.Role != replication.DiskRoleOS {
			disks = append(disks, d)
		}
	}
	return disks
}
