// Package proof is the byte-for-byte proof that replication worked, used by the demo and the tests
// (bin/verify): it waits until the target has applied everything the agent published, then compares
// every target disk with its source (over the disk's virtual size) and every marker snapshot named in
// the ground truth with the sha256 the agent recorded at that marker, and checks that each is still a
// fixed VHD (its footer intact); or it compares the disks a test failover or a failover
// materialized in a container. It reads the target storage directly, so it is no part of the agent's
// outbound-only path.
package proof

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"github.com/standby-dr/standby/shared/agent"
	"github.com/standby-dr/standby/shared/api/apiv1"
	"github.com/standby-dr/standby/shared/replication"
)

// Prover proves one group.
type Prover struct {
	Group string
	// StateDir is the agent's state directory: its last published sequence, and the source files of
	// "agent" disks.
	StateDir string
	API      interface {
		Group(ctx context.Context, group string) (apiv1.GroupView, error)
	}
	Out io.Writer
}

// Converge waits until the group's watermark reaches the agent's last published sequence.
func (p *Prover) Converge(ctx context.Context) (apiv1.GroupView, error) {
	published, err := agent.PublishedSeq(p.StateDir, p.Group)
	if err != nil {
		return apiv1.GroupView{}, fmt.Errorf("agent state: %w", err)
	}
	start := time.Now()
	for {
		view, err := p.API.Group(ctx, p.Group)
		if err != nil {
			return view, err
		}
		if view.Watermark >= published {
			fmt.Fprintf(p.Out, "converged: watermark %d = agent's last sequence, %.1fs after the agent stopped\n", view.Watermark, time.Since(start).Seconds())
			return view, nil
		}
		if replication.State(view.State) == replication.StateResyncRequired {
			return view, fmt.Errorf("group needs a resync: %s", view.Reason)
		}
		select {
		case <-ctx.Done():
			return view, fmt.Errorf("target did not converge: watermark %d, agent published %d", view.Watermark, published)
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// Target compares, byte for byte, every target disk with its source and, when truthFile is given,
// every marker snapshot on the target that the ground truth names with the sha256 recorded then.
func (p *Prover) Target(ctx context.Context, pages replication.PageStore, state replication.StateStore, view apiv1.GroupView, truthFile string) error {
	spec := agent.SpecOf(view)
	failures := 0
	for _, d := range spec.Disks() {
		ref := spec.TargetDisk(d.Key)
		same, err := p.sameAsSource(ctx, pages, ref, d)
		if err != nil {
			return err
		}
		status, failed, err := verdict(ctx, pages, ref, d.Spec.SizeBytes, same)
		if err != nil {
			return err
		}
		failures += failed
		fmt.Fprintf(p.Out, "disk %-14s %5d MiB  target %s\n", d.Key, d.Spec.SizeBytes>>20, status)
	}
	if truthFile != "" {
		n, err := p.markers(ctx, pages, state, spec, truthFile)
		if err != nil {
			return err
		}
		failures += n
	}
	if failures > 0 {
		return fmt.Errorf("%d differences", failures)
	}
	fmt.Fprintln(p.Out, "verified: every target disk and every marker snapshot is byte-identical to the source; every target disk is a fixed VHD")
	return nil
}

// markers compares the marker snapshots with the ground truth and returns how many differ.
func (p *Prover) markers(ctx context.Context, pages replication.PageStore, state replication.StateStore, spec replication.GroupSpec, truthFile string) (int, error) {
	truths, err := agent.ReadTruth(truthFile)
	if err != nil {
		return 0, err
	}
	markers, err := replication.ListMarkers(ctx, state, p.Group)
	if err != nil {
		return 0, err
	}
	failures, checked := 0, 0
	for _, m := range markers {
		t, ok := truths[m.Seq]
		if !ok {
			continue
		}
		for key, want := range t.Disks {
			snap, ok := m.Snapshots[key]
			if !ok {
				fmt.Fprintf(p.Out, "marker %d: no snapshot of %s\n", m.Seq, key)
				failures++
				continue
			}
			got, err := hashDisk(ctx, pages, spec.TargetDisk(key), snap, sizeOf(spec, key))
			if err != nil {
				return 0, err
			}
			if got != want {
				fmt.Fprintf(p.Out, "marker %d: snapshot of %s DIFFERS from the ground truth\n", m.Seq, key)
				failures++
			}
			if _, err := replication.ReadFooter(ctx, pages, spec.TargetDisk(key), snap, sizeOf(spec, key)); errors.Is(err, replication.ErrConflict) {
				fmt.Fprintf(p.Out, "marker %d: snapshot of %s: VHD footer BROKEN: %v\n", m.Seq, key, err)
				failures++
			} else if err != nil {
				return 0, err
			}
		}
		checked++
	}
	fmt.Fprintf(p.Out, "markers: %d snapshotted, %d checked against the ground truth (%d disks each)\n", len(markers), checked, len(spec.Disks()))
	if checked == 0 {
		return 0, fmt.Errorf("no marker of the ground truth was found on the target")
	}
	return failures, nil
}

// Container compares the disks materialized in a container (by a test failover or a failover) with
// the sources, or, when seq is not 0, with the ground truth at marker seq.
func (p *Prover) Container(ctx context.Context, pages replication.PageStore, view apiv1.GroupView, container, truthFile string, seq int64) error {
	spec := agent.SpecOf(view)
	var truth agent.Truth
	if seq > 0 {
		truths, err := agent.ReadTruth(truthFile)
		if err != nil {
			return err
		}
		var ok bool
		if truth, ok = truths[seq]; !ok {
			return fmt.Errorf("no ground truth at marker %d", seq)
		}
	}
	against := "its source"
	if seq > 0 {
		against = fmt.Sprintf("the ground truth at marker %d", seq)
	}
	failures := 0
	for _, d := range spec.Disks() {
		ref := replication.DiskIn(container, d.Key)
		var same bool
		var err error
		if seq > 0 {
			var got string
			got, err = hashDisk(ctx, pages, ref, "", d.Spec.SizeBytes)
			same = got == truth.Disks[d.Key]
		} else {
			same, err = p.sameAsSource(ctx, pages, ref, d)
		}
		if err != nil {
			return err
		}
		status, failed, err := verdict(ctx, pages, ref, d.Spec.SizeBytes, same)
		if err != nil {
			return err
		}
		failures += failed
		fmt.Fprintf(p.Out, "disk %-14s in %s: %s to %s\n", d.Key, container, status, against)
	}
	if failures > 0 {
		return fmt.Errorf("%d differences", failures)
	}
	return nil
}

// sameAsSource compares a disk (target or materialized) with its source file, byte for byte.
func (p *Prover) sameAsSource(ctx context.Context, pages replication.PageStore, ref replication.DiskRef, d replication.DiskRefSpec) (bool, error) {
	path := filepath.Join(p.StateDir, p.Group, d.VM, d.Spec.Name+".img") // an agent disk's image
	if src := d.Spec.Parsed(); src.Kind == replication.SourceFile {
		path = src.Ref
	}
	src, err := os.Open(path)
	if err != nil {
		return false, err
	}
	defer src.Close()
	return compareDisk(ctx, pages, ref, "", src, d.Spec.SizeBytes)
}

// verdict is a disk's line of the proof: its content (same as the source or the ground truth, over the
// virtual size), then whether it is still a fixed VHD of that size (its footer intact), with the
// failures counted.
func verdict(ctx context.Context, pages replication.PageStore, ref replication.DiskRef, size int64, same bool) (string, int, error) {
	status, failures := "identical", 0
	if !same {
		status, failures = "DIFFERENT", 1
	}
	err := replication.CheckFixedVHD(ctx, pages, ref, size)
	if errors.Is(err, replication.ErrConflict) {
		return status + "; VHD footer BROKEN: " + err.Error(), failures + 1, nil
	}
	return status, failures, err
}

func sizeOf(spec replication.GroupSpec, key string) int64 {
	for _, d := range spec.Disks() {
		if d.Key == key {
			return d.Spec.SizeBytes
		}
	}
	return 0
}

const chunk = 4 << 20

func compareDisk(ctx context.Context, pages replication.PageStore, ref replication.DiskRef, snap string, src io.ReaderAt, size int64) (bool, error) {
	buf := make([]byte, chunk)
	for off := int64(0); off < size; off += chunk {
		n := min(chunk, size-off)
		got, err := pages.ReadRange(ctx, ref, snap, off, n)
		if err != nil {
			return false, err
		}
		if _, err := src.ReadAt(buf[:n], off); err != nil {
			return false, err
		}
		if !bytes.Equal(got, buf[:n]) {
			return false, nil
		}
	}
	return true, nil
}

func hashDisk(ctx context.Context, pages replication.PageStore, ref replication.DiskRef, snap string, size int64) (string, error) {
	h := sha256.New()
	for off := int64(0); off < size; off += chunk {
		got, err := pages.ReadRange(ctx, ref, snap, off, min(chunk, size-off))
		if err != nil {
			return "", err
		}
		h.Write(got)
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}
