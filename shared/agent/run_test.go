package agent

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/standby-dr/standby/shared/api/apiv1"
	"github.com/standby-dr/standby/shared/replication"
	"github.com/standby-dr/standby/shared/standin/memstore"
)

// fakeAPI answers a run's API calls: a group in initial replication, and a stop on the second heartbeat.
type fakeAPI struct {
	mu      sync.Mutex
	view    apiv1.GroupView
	reports []apiv1.AgentReport
	put     int
}

func (f *fakeAPI) PutGroup(_ context.Context, _ string, spec apiv1.GroupSpec) (apiv1.GroupView, int, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.put++
	f.view.VMs = spec.VMs
	return f.view, 201, nil
}

func (f *fakeAPI) StreamKey(context.Context, string) (string, error) { return "", nil }

func (f *fakeAPI) Group(context.Context, string) (apiv1.GroupView, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.view, nil
}

func (f *fakeAPI) Heartbeat(_ context.Context, _ string, rep apiv1.AgentReport) (apiv1.AgentInstructions, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.reports = append(f.reports, rep)
	return apiv1.AgentInstructions{Stop: len(f.reports) >= 2}, nil
}

func (f *fakeAPI) DiskHashes(context.Context, string, string, int64) ([]string, error) {
	return nil, nil
}

func (f *fakeAPI) Event(context.Context, string, string, string) error { return nil }

// A run with the workload and markers: enabled through the API, stopped by a planned failover's
// heartbeat answer, everything up to the final marker published, the stop reported, the ground truth
// written at every marker, and the summary in the JSON form agent run prints.
func TestRunStopsOnPlannedFailover(t *testing.T) {
	dir := t.TempDir()
	api := &fakeAPI{view: apiv1.GroupView{State: apiv1.State(replication.StateInitialReplication)}}
	journal, pub := memstore.NewJournal(), memstore.NewHub(4)
	spec := replication.GroupSpec{VMs: []replication.VMSpec{{Name: "vm", Disks: []replication.DiskSpec{{Name: "d", SizeBytes: 1 << 20, Source: "agent"}}}}}
	closed := false
	cfg := RunConfig{Group: "g", API: api, Spec: &spec, StateDir: dir, WorkloadRate: 1, Seed: 1, Duration: time.Minute,
		MarkerInterval: 100 * time.Millisecond, TruthFile: filepath.Join(dir, "truth.jsonl"), BatchBytes: 1 << 20,
		BatchDelay: 10 * time.Millisecond, ScanInterval: -1, Log: slog.New(slog.DiscardHandler),
		Connect: func() (replication.JournalStore, replication.ChangePublisher, func(), error) {
			return journal, pub, func() { closed = true }, nil
		}}
	summary, err := Run(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	if api.put != 1 || !closed {
		t.Fatalf("put %d times, stores closed %v", api.put, closed)
	}
	last := api.reports[len(api.reports)-1]
	if !last.Stopped || last.Seq != summary.FinalMarker || summary.LastPublished != summary.FinalMarker {
		t.Fatalf("last report %+v, summary %+v", last, summary)
	}
	if summary.Markers < 2 || summary.WorkloadWrites == 0 || summary.Seconds < 1 || summary.Seconds > 30 {
		t.Fatalf("summary %+v", summary)
	}
	truths, err := ReadTruth(cfg.TruthFile)
	if err != nil || len(truths) == 0 {
		t.Fatalf("ground truth: %d records, %v", len(truths), err)
	}
	if published, err := PublishedSeq(dir, "g"); err != nil || published != summary.FinalMarker {
		t.Fatalf("state says %d published (%v), final marker %d", published, err, summary.FinalMarker)
	}
	// The summary line is what a map of the same names printed (sorted keys).
	line, _ := json.Marshal(summary)
	var m map[string]any
	json.Unmarshal(line, &m)
	again, _ := json.Marshal(m)
	if string(line) != string(again) || len(m) != 12 {
		t.Fatalf("summary line %s, as a map %s", line, again)
	}
}

// refusingAPI answers heartbeats as the API does: a report whose sequence runs more than
// replication.MaxSeqAhead past the group's is refused (400); the third accepted one stops the run.
// At the first report the group's view becomes then (the group was made again meanwhile).
type refusingAPI struct {
	fakeAPI
	refused, accepted int
	then              *apiv1.GroupView
}

func (f *refusingAPI) Heartbeat(_ context.Context, _ string, rep apiv1.AgentReport) (apiv1.AgentInstructions, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.then != nil {
		f.view, f.then = *f.then, nil
	}
	if rep.Seq > f.view.Watermark+replication.MaxSeqAhead {
		f.refused++
		// As apiclient answers a 400.
		return apiv1.AgentInstructions{}, fmt.Errorf("400 invalid request: seq is more than 1048576 batches past what was applied: %w", apiv1.ErrBadRequest)
	}
	f.accepted++
	f.reports = append(f.reports, rep)
	return apiv1.AgentInstructions{Stop: f.accepted >= 3}, nil
}

// An agent numbering its batches far past the group's sequence would have every report refused. A
// state file that says so (one from elsewhere, or written by an older agent that believed a forged
// blob) is not believed at start; numbering that gets there while running (the group was made again
// meanwhile) is found by the first refused report. Either way the agent numbers on from the group's
// sequence, drops what it numbered before unsent, resyncs, and its reports are accepted again.
func TestARefusedReportRenumbersAndResyncs(t *testing.T) {
	t.Run("at start", func(t *testing.T) { renumbers(t, nil) })
	t.Run("while running", func(t *testing.T) {
		renumbers(t, &apiv1.GroupView{State: apiv1.State(replication.StateProtected), Watermark: 5, AgentSeq: 5})
	})
}

func renumbers(t *testing.T, then *apiv1.GroupView) {
	dir := t.TempDir()
	const far = 1_000_000_000_000_000
	os.WriteFile(statePath(dir, "g"), []byte(`{"nextSeq":1000000000000000,"published":999999999999999,"clean":true}`), 0o644)
	first := apiv1.GroupView{State: apiv1.State(replication.StateProtected), Watermark: 5, AgentSeq: 5}
	if then != nil { // the group's sequence the agent starts with is its own
		first.Watermark, first.AgentSeq = far-1, far-1
	}
	api := &refusingAPI{fakeAPI: fakeAPI{view: first}, then: then}
	journal, pub := memstore.NewJournal(), memstore.NewHub(4)
	spec := replication.GroupSpec{VMs: []replication.VMSpec{{Name: "vm", Disks: []replication.DiskSpec{{Name: "d", SizeBytes: 1 << 20, Source: "agent"}}}}}
	cfg := RunConfig{Group: "g", API: api, Spec: &spec, StateDir: dir, WorkloadRate: 1, Seed: 1, Duration: time.Minute,
		MarkerInterval: 100 * time.Millisecond, BatchBytes: 1 << 20, BatchDelay: 10 * time.Millisecond, ScanInterval: -1, Log: slog.New(slog.DiscardHandler),
		Connect: func() (replication.JournalStore, replication.ChangePublisher, func(), error) {
			return journal, pub, func() {}, nil
		}}
	summary, err := Run(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	if (then != nil) != (api.refused > 0) || api.accepted < 3 || summary.FinalMarker <= 5 || summary.FinalMarker > 5+replication.MaxSeqAhead {
		t.Fatalf("%d reports refused, %d accepted; final marker %d", api.refused, api.accepted, summary.FinalMarker)
	}
	stored, _ := journal.List(context.Background(), "g")
	resynced := false
	for _, seq := range stored {
		if seq >= far && then == nil {
			t.Fatalf("batch %d of the abandoned numbering was stored", seq)
		}
		payload, _ := journal.Get(context.Background(), "g", seq)
		if b, err := replication.DecodeBatch(payload); err == nil && b.Kind == replication.KindResync {
			resynced = true
		}
	}
	if !resynced || stored[0] != 6 {
		t.Fatalf("stored %v (resync among them: %v), want the new numbering from 6 with a resync", stored, resynced)
	}
}

// keyedAPI is fakeAPI for a group with a stream key, keeping the events the agent reports; the third
// report stops the run.
type keyedAPI struct {
	fakeAPI
	key    []byte
	events []string
}

func (f *keyedAPI) StreamKey(context.Context, string) (string, error) {
	return base64.StdEncoding.EncodeToString(f.key), nil
}

func (f *keyedAPI) Event(_ context.Context, _, kind, message string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.events = append(f.events, kind+": "+message)
	return nil
}

func (f *keyedAPI) Heartbeat(_ context.Context, _ string, rep apiv1.AgentReport) (apiv1.AgentInstructions, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.reports = append(f.reports, rep)
	return apiv1.AgentInstructions{Stop: len(f.reports) >= 3}, nil
}

// racingJournal plants their batch at sequence at just before the agent stores its own there: another
// holder of the stream key winning the race for the sequence.
type racingJournal struct {
	*memstore.Journal
	at     int64
	theirs []byte
}

func (j *racingJournal) Put(ctx context.Context, group string, seq int64, payload []byte) error {
	if seq == j.at && j.theirs != nil {
		j.Journal.Put(ctx, group, seq, j.theirs)
		j.theirs = nil
	}
	return j.Journal.Put(ctx, group, seq, payload)
}

// Another holder of the group's stream key got a signed batch into the journal at a sequence the agent
// was to use — while the agent ran, or while it was down (a sequence its state never numbered): the
// agent keeps the stored batch (batches are written once, and this one verifies), reports the
// conflict to the API, and resyncs so the target ends as its disk.
func TestAJournalConflictIsReportedAndResynced(t *testing.T) {
	t.Run("while running", func(t *testing.T) { journalConflict(t, false) })
	t.Run("while down", func(t *testing.T) { journalConflict(t, true) })
}

func journalConflict(t *testing.T, down bool) {
	ctx := context.Background()
	dir := t.TempDir()
	api := &keyedAPI{fakeAPI: fakeAPI{view: apiv1.GroupView{State: apiv1.State(replication.StateProtected)}}, key: bytes.Repeat([]byte{9}, 32)}
	journal, pub := memstore.NewJournal(), memstore.NewHub(4)
	const planted = 2
	other := &replication.Batch{Group: "g", Seq: planted, Kind: replication.KindBatch, SourceTime: time.Now(),
		Extents: []replication.Extent{{Disk: "vm/d", Offset: 0, Length: 4096, Data: bytes.Repeat([]byte{0xee}, 4096)}}}
	theirs, _, err := replication.SignBatch(api.key, other, false)
	if err != nil {
		t.Fatal(err)
	}
	racing := &racingJournal{Journal: journal, at: planted, theirs: theirs}
	if down { // the agent's state: it stopped cleanly before numbering the planted sequence
		journal.Put(ctx, "g", planted, theirs)
		racing.theirs = nil
		os.WriteFile(statePath(dir, "g"), []byte(`{"nextSeq":1,"published":0,"clean":true}`), 0o644)
	}
	spec := replication.GroupSpec{VMs: []replication.VMSpec{{Name: "vm", Disks: []replication.DiskSpec{{Name: "d", SizeBytes: 1 << 20, Source: "agent"}}}}}
	cfg := RunConfig{Group: "g", API: api, Spec: &spec, StateDir: dir, WorkloadRate: 1, Seed: 1, Duration: time.Minute,
		MarkerInterval: 100 * time.Millisecond, BatchBytes: 1 << 20, BatchDelay: 10 * time.Millisecond, ScanInterval: -1, Log: slog.New(slog.DiscardHandler),
		Connect: func() (replication.JournalStore, replication.ChangePublisher, func(), error) {
			return racing, pub, func() {}, nil
		}}
	if _, err := Run(ctx, cfg); err != nil {
		t.Fatal(err)
	}
	if stored, _ := journal.Get(ctx, "g", planted); !bytes.Equal(stored, theirs) {
		t.Fatal("the batch stored first was replaced")
	}
	if len(api.events) == 0 || !strings.HasPrefix(api.events[0], "journal-conflict: the journal holds another batch signed with the group's key at sequence 2") {
		t.Fatalf("events %q", api.events)
	}
	resync := false
	stored, _ := journal.List(ctx, "g")
	for _, seq := range stored {
		payload, _ := journal.Get(ctx, "g", seq)
		if opened, err := replication.OpenPayload(api.key, "g", seq, payload); err == nil && seq > planted {
			if b, err := replication.DecodeBatch(opened); err == nil && b.Kind == replication.KindResync {
				resync = true
			}
		}
	}
	if !resync {
		t.Fatalf("no resync after the conflict (stored %v)", stored)
	}
}
