package tests

import (
	"bytes"
	"context"
	crand "crypto/rand"
	"fmt"
	"log/slog"
	"math/rand"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/standby-dr/standby/shared/agent"
	"github.com/standby-dr/standby/shared/azure/journal"
	"github.com/standby-dr/standby/shared/azure/pageblobs"
	"github.com/standby-dr/standby/shared/azure/tables"
	"github.com/standby-dr/standby/shared/replication"
	"github.com/standby-dr/standby/shared/standin/qemu"
	"github.com/standby-dr/standby/shared/testkit/testenv"
	"golang.org/x/sync/errgroup"
)

// write is one write of a benchmark's pattern.
type write struct {
	disk   string
	offset int64
	data   []byte
}

// pattern is a reproducible write pattern: n writes of 64 KiB to 1 MiB at random 4 KiB-aligned offsets
// across the disks.
func pattern(disks []replication.DiskRefSpec, n int, seed int64) []write {
	rng := rand.New(rand.NewSource(seed))
	out := make([]write, n)
	for i := range out {
		d := disks[rng.Intn(len(disks))]
		length := int64(16+rng.Intn(241)) * 4096
		data := make([]byte, length)
		rng.Read(data)
		out[i] = write{disk: d.Key, offset: rng.Int63n((d.Spec.SizeBytes-length)/4096+1) * 4096, data: data}
	}
	return out
}

func patternBytes(ws []write) int64 {
	var n int64
	for _, w := range ws {
		n += int64(len(w.data))
	}
	return n
}

func benchDisks(vms, disks int, size int64) ([]replication.DiskRefSpec, string) {
	var specs []replication.DiskRefSpec
	var b strings.Builder
	b.WriteString(`{"vms":[`)
	for v := 0; v < vms; v++ {
		if v > 0 {
			b.WriteString(",")
		}
		fmt.Fprintf(&b, `{"name":"vm%d","disks":[`, v)
		for d := 0; d < disks; d++ {
			if d > 0 {
				b.WriteString(",")
			}
			fmt.Fprintf(&b, `{"name":"d%d","sizeBytes":%d,"source":"agent"}`, d, size)
			specs = append(specs, replication.DiskRefSpec{Key: fmt.Sprintf("vm%d/d%d", v, d), VM: fmt.Sprintf("vm%d", v),
				Spec: replication.DiskSpec{Name: fmt.Sprintf("d%d", d), SizeBytes: size, Source: "agent"}})
		}
		b.WriteString("]}")
	}
	b.WriteString(`]}`)
	return specs, b.String()
}

// rawUpload writes the pattern with UploadPages straight to target disks, 8 calls at a time (apply's
// parallelism), and returns MB/s: the raw storage path.
func rawUpload(t testing.TB, ws []write, disks []replication.DiskRefSpec) float64 {
	store := pageblobs.New(testenv.BlobService(t, "target"))
	ctx := context.Background()
	container := testenv.Unique("raw")
	store.EnsureContainer(ctx, container)
	for _, d := range disks {
		if err := store.Create(ctx, replication.DiskRef{Container: container, Name: d.Key}, d.Spec.SizeBytes); err != nil {
			t.Fatal(err)
		}
	}
	start := time.Now()
	g := errgroup.Group{}
	g.SetLimit(8)
	for _, w := range ws {
		g.Go(func() error {
			return store.WritePages(ctx, replication.DiskRef{Container: container, Name: w.disk}, w.offset, w.data)
		})
	}
	if err := g.Wait(); err != nil {
		t.Fatal(err)
	}
	return float64(patternBytes(ws)) / (1 << 20) / time.Since(start).Seconds()
}

func waitWatermark(t testing.TB, s *stack, group string, seq int64, limit time.Duration) {
	deadline := time.Now().Add(limit)
	for {
		_, _, body := s.app.call(t, "GET", "/api/v1/groups/"+group, "test-key", "")
		if watermark(body) >= seq {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("watermark stuck below %d: %s", seq, body)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func enable(b *testing.B, s *stack, group, spec string) {
	if status, _, body := s.app.call(b, "PUT", "/api/v1/groups/"+group, "test-key", spec); status != 201 {
		b.Fatalf("PUT group: %d %s", status, body)
	}
}

// BenchmarkFigure_apply_size_cost_ratio: the time apply takes for the same churn on a 64 GiB and on a
// 1 GiB sparse disk (the Applier straight against the target Azurite, batches from the journal).
// Apply is O(changed bytes): the ratio should be about 1.
func BenchmarkFigure_apply_size_cost_ratio(b *testing.B) {
	small := applyTime(b, 1<<30)
	large := applyTime(b, 64<<30)
	b.ReportMetric(large.Seconds()/small.Seconds(), "ratio")
	b.Logf("apply size cost: 1 GiB disk %.2fs, 64 GiB disk %.2fs", small.Seconds(), large.Seconds())
}

// BenchmarkFigure_apply_stage_throughput_ratio: apply alone (the Applier reading batches from the
// journal and writing the target, no agent, broker or host) over raw UploadPages of the same writes.
func BenchmarkFigure_apply_stage_throughput_ratio(b *testing.B) {
	disks, _ := benchDisks(1, 1, 1<<30)
	raw := rawUpload(b, pattern(disks, 200, 4), disks)
	elapsed := applyTime(b, 1<<30)
	stage := float64(patternBytes(pattern(disks, 200, 4))) / (1 << 20) / elapsed.Seconds()
	b.ReportMetric(stage/raw, "ratio")
	b.Logf("apply stage: %.1f MB/s, raw UploadPages %.1f MB/s", stage, raw)
}

func applyTime(b *testing.B, size int64) time.Duration {
	ctx := context.Background()
	pages, state := pageblobs.New(testenv.BlobService(b, "target")), tables.New(testenv.TableService(b, "target"))
	j := journal.New(testenv.BlobService(b, "source"), testenv.Unique("benchjournal"))
	group := testenv.Unique("size")
	disks, _ := benchDisks(1, 1, size)
	spec := replication.GroupSpec{VMs: []replication.VMSpec{{Name: "vm0", Disks: []replication.DiskSpec{disks[0].Spec}}}}
	spec.Normalize(group)
	pages.EnsureContainer(ctx, spec.Target.Container)
	if err := replication.CreateFixedVHD(ctx, pages, spec.TargetDisk(disks[0].Key), size, time.Now()); err != nil {
		b.Fatal(err)
	}
	g, err := replication.CreateGroup(ctx, state, group, spec, time.Now())
	if err != nil {
		b.Fatal(err)
	}
	key := g.StreamKey()
	// The same churn for both sizes: 200 writes (about 50 MiB) at random offsets of the disk, in 50 batches.
	ws := pattern(disks, 200, 4)
	var descs []replication.Descriptor
	var mu sync.Mutex
	for i := 0; i < 50; i++ {
		bt := &replication.Batch{Group: group, Seq: int64(i + 1), Kind: replication.KindBatch, SourceTime: time.Now()}
		for _, w := range ws[i*4 : i*4+4] {
			bt.Extents = append(bt.Extents, replication.Extent{Disk: w.disk, Offset: w.offset, Length: int64(len(w.data)), Data: w.data})
		}
		payload, d, _ := replication.SignBatch(key, bt, false)
		if err := j.Put(ctx, group, bt.Seq, payload); err != nil {
			b.Fatal(err)
		}
		mu.Lock()
		descs = append(descs, d)
		mu.Unlock()
	}
	applier := &replication.Applier{State: state, Pages: pages, Journal: j, Log: slog.New(slog.DiscardHandler), Now: time.Now, Parallelism: 8}
	start := time.Now()
	for i := 0; i < len(descs); i += 5 { // five batches an invocation, as the host would deliver them
		if _, err := applier.Apply(ctx, descs[i:i+5]); err != nil {
			b.Fatal(err)
		}
	}
	return time.Since(start)
}

// BenchmarkFigure_cut_point: the time to cut a recovery point (apply snapshots every disk at a marker
// and records it; cutpoints promotes it) for 16 VMs x 4 disks, and its growth with the disk count:
// time for 64 disks / (16 x time for 4 disks). Disks are 1 GiB and sparse (the time does not depend on
// their size).
func BenchmarkFigure_cut_point(b *testing.B) {
	t4 := cutPointTime(b, 1, 4)
	t64 := cutPointTime(b, 16, 4)
	b.ReportMetric(t64.Seconds(), "cut_point_s_64_disks:s")
	b.ReportMetric(t64.Seconds()/(16*t4.Seconds()), "cut_point_growth_ratio:ratio")
	b.Logf("cut a point: 4 disks %.3fs, 64 disks %.3fs", t4.Seconds(), t64.Seconds())
}

func cutPointTime(b *testing.B, vms, disksPerVM int) time.Duration {
	ctx := context.Background()
	pages, state := pageblobs.New(testenv.BlobService(b, "target")), tables.New(testenv.TableService(b, "target"))
	j := journal.New(testenv.BlobService(b, "source"), testenv.Unique("cutj"))
	group := testenv.Unique("cut")
	var spec replication.GroupSpec
	for v := 0; v < vms; v++ {
		vm := replication.VMSpec{Name: fmt.Sprintf("vm%d", v)}
		for d := 0; d < disksPerVM; d++ {
			vm.Disks = append(vm.Disks, replication.DiskSpec{Name: fmt.Sprintf("d%d", d), SizeBytes: 1 << 30, Source: "agent"})
		}
		spec.VMs = append(spec.VMs, vm)
	}
	spec.Normalize(group)
	pages.EnsureContainer(ctx, spec.Target.Container)
	g, err := replication.CreateGroup(ctx, state, group, spec, time.Now())
	if err != nil {
		b.Fatal(err)
	}
	for _, d := range spec.Disks() {
		if err := pages.Create(ctx, g.TargetDisk(d.Key), d.Spec.SizeBytes); err != nil {
			b.Fatal(err)
		}
		pages.WritePages(ctx, g.TargetDisk(d.Key), 0, make([]byte, 4096)) // something to snapshot
	}
	replication.UpdateGroup(ctx, state, group, replication.AllRows, func(r *replication.GroupRecord) error { r.State = replication.StateProtected; return nil })
	marker := &replication.Batch{Group: group, Seq: 1, Kind: replication.KindMarker, Consistency: "crash", SourceTime: time.Now()}
	payload, d, _ := replication.SignBatch(g.StreamKey(), marker, false)
	j.Put(ctx, group, 1, payload)
	applier := &replication.Applier{State: state, Pages: pages, Journal: j, Log: slog.New(slog.DiscardHandler), Now: time.Now, Parallelism: 8}
	start := time.Now()
	if _, err := applier.Apply(ctx, []replication.Descriptor{d}); err != nil {
		b.Fatal(err)
	}
	g, _ = replication.LoadGroup(ctx, state, group)
	if points, err := replication.Promote(ctx, state, g, time.Now()); err != nil || len(points) != 1 {
		b.Fatalf("promote: %d points, %v", len(points), err)
	}
	return time.Since(start)
}

// BenchmarkFigure_rto: POST failover → every VM healthy, for a group of 2 VMs × 2 disks of 256 MiB
// (each VM's first disk the bootable image, 32 MiB written on every disk), over the raw time of the same
// work done straight in the same run: the point's snapshots copied into page blobs, then the same VMs
// booted cold from the source image with QEMU, side by side, until each guest reports healthy.
func BenchmarkFigure_rto(b *testing.B) {
	s, _, images := newComputeStack(b, "*/1 * * * * *")
	group := testenv.Unique("rto")
	disks, spec := benchDisks(2, 2, 256<<20)
	enable(b, s, group, withNetwork(spec))
	a := s.agent(b, group, disks)
	a.Marker("crash", true)
	image, err := os.ReadFile(images.OS)
	if err != nil {
		b.Fatal(err)
	}
	data := make([]byte, 4<<20)
	for _, d := range disks {
		base := int64(0)
		if d.Spec.Name == "d0" { // the OS disk: the image, then the churn above it
			writeNonZero(b, a, d.Key, image)
			base = int64(len(image))
		}
		for off := int64(0); off < 32<<20; off += int64(len(data)) {
			crand.Read(data)
			if err := a.Write(d.Key, base+off*5, data); err != nil { // spread over the disk
				b.Fatal(err)
			}
		}
	}
	final := a.Marker("crash", false)
	a.Close(context.Background())
	p := waitPoint(b, group, final)
	raw := rawCopies(b, group, p) + rawBoots(b, images, 2)
	start := time.Now()
	status, header, body := s.app.call(b, "POST", "/api/v1/groups/"+group+"/failover", "test-key", `{"type":"unplanned"}`)
	if status != 202 {
		b.Fatalf("POST failover: %d %s", status, body)
	}
	waitFor(b, 5*time.Minute, "the failover job", func() bool {
		_, _, body := s.app.call(b, "GET", header.Get("Location"), "test-key", "")
		if strings.Contains(body, `"state": "Failed"`) {
			b.Fatalf("the failover failed: %s", body)
		}
		return strings.Contains(body, `"state": "Succeeded"`)
	})
	rto := time.Since(start)
	b.ReportMetric(rto.Seconds(), "rto_s:s")
	b.ReportMetric(rto.Seconds()/raw.Seconds(), "rto_ratio:ratio")
	b.Logf("RTO %.2fs (request → every VM healthy), raw copies and cold boots %.2fs", rto.Seconds(), raw.Seconds())
}

// withNetwork puts every VM of a bench spec in a mapped subnet (bring-up needs one).
func withNetwork(spec string) string {
	spec = strings.ReplaceAll(spec, `{"name":"vm`, `{"subnet":"src/app","name":"vm`)
	return strings.TrimSuffix(spec, "}") + `,"network":{"mappings":[{"source":"src/app","target":"dr/app","test":"drtest/app","targetPrefix":"10.2.0.0/24","testPrefix":"10.3.0.0/24"}]}}`
}

// writeNonZero writes data's non-zero MiB blocks to the agent's disk.
func writeNonZero(b *testing.B, a *agent.Agent, disk string, data []byte) {
	zero := make([]byte, 1<<20)
	for off := 0; off < len(data); off += 1 << 20 {
		if block := data[off:min(off+1<<20, len(data))]; !bytes.Equal(block, zero[:len(block)]) {
			if err := a.Write(disk, int64(off), block); err != nil {
				b.Fatal(err)
			}
		}
	}
}

// waitPoint waits for the group's newest point to be the marker's.
func waitPoint(b *testing.B, group string, seq int64) replication.RecoveryPoint {
	var p replication.RecoveryPoint
	waitFor(b, 2*time.Minute, "the point", func() bool {
		points, err := replication.ListPoints(context.Background(), tables.New(testenv.TableService(b, "target")), group)
		if err == nil && len(points) > 0 && points[0].Seq == seq {
			p = points[0]
			return true
		}
		return false
	})
	return p
}

// rawCopies is the time of the point's copies made straight with the page store.
func rawCopies(b *testing.B, group string, p replication.RecoveryPoint) time.Duration {
	pages := pageblobs.New(testenv.BlobService(b, "target"))
	ctx := context.Background()
	container := testenv.Unique("rawcopy")
	pages.EnsureContainer(ctx, container)
	start := time.Now()
	for key, snap := range p.Snapshots {
		if err := pages.StartCopy(ctx, replication.DiskIn(group+"-asr", key), snap, replication.DiskRef{Container: container, Name: key}); err != nil {
			b.Fatal(err)
		}
	}
	for key := range p.Snapshots {
		for {
			st, err := pages.CopyStatus(ctx, replication.DiskRef{Container: container, Name: key})
			if err != nil || st.Status == "success" {
				break
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	return time.Since(start)
}

// rawBoots is the time n VMs take to boot cold from the source image side by side, until each guest
// reports healthy.
func rawBoots(b *testing.B, images qemu.Images, n int) time.Duration {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	start := time.Now()
	type result struct {
		healthy time.Duration
		err     error
	}
	results := make(chan result, n)
	var stopping sync.WaitGroup
	for i := range n {
		go func() {
			spec := images.Spec(fmt.Sprintf("raw%d", i), images.OS)
			spec.Snapshot = true
			m, err := qemu.Boot(ctx, spec)
			if err != nil {
				results <- result{err: err}
				return
			}
			_, err = m.WaitHealthy(ctx)
			results <- result{time.Since(start), err}
			stopping.Go(func() { m.Stop(ctx) })
		}()
	}
	var elapsed time.Duration
	for range n {
		r := <-results
		if r.err != nil {
			b.Fatal(r.err)
		}
		elapsed = max(elapsed, r.healthy)
	}
	stopping.Wait()
	return elapsed
}
