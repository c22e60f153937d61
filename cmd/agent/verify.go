package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/standby-dr/standby/shared/apiv1"
	"github.com/standby-dr/standby/shared/azconn"
	"github.com/standby-dr/standby/shared/replication"
	"github.com/standby-dr/standby/shared/tables"
)

// verify compares, byte for byte, every target disk with its source and every marker snapshot named in
// the ground truth with the sha256 recorded at that marker. It reads the target storage directly: it is
// the proof step of tests and the demo, not part of the agent's outbound-only path.
func verify(ctx context.Context, c common, view apiv1.GroupView, truthFile string) error {
	pages, err := pageStore("StandbyTargetStorage")
	if err != nil {
		return err
	}
	tsTables, err := azconn.Lookup(os.Getenv, "StandbyTargetStorage", "table")
	if err != nil {
		return err
	}
	tsvc, err := tables.ServiceClient(tsTables)
	if err != nil {
		return err
	}
	spec := replication.GroupSpec{VMs: view.VMs, Target: view.Target, Policy: view.Policy}
	failures := 0
	for _, d := range spec.Disks() {
		same, err := sameAsSource(ctx, c, pages, spec.TargetDisk(d.Key), d)
		if err != nil {
			return err
		}
		status := "identical"
		if !same {
			status, failures = "DIFFERENT", failures+1
		}
		fmt.Printf("disk %-14s %5d MiB  target %s\n", d.Key, d.Spec.SizeBytes>>20, status)
	}
	if truthFile != "" {
		truths, err := readTruth(truthFile)
		if err != nil {
			return err
		}
		markers, err := replication.ListMarkers(ctx, tables.New(tsvc), c.group)
		if err != nil {
			return err
		}
		checked := 0
		for _, m := range markers {
			t, ok := truths[m.Seq]
			if !ok {
				continue
			}
			for key, want := range t.Disks {
				snap, ok := m.Snapshots[key]
				if !ok {
					fmt.Printf("marker %d: no snapshot of %s\n", m.Seq, key)
					failures++
					continue
				}
				got, err := hashDisk(ctx, pages, spec.TargetDisk(key), snap, sizeOf(spec, key))
				if err != nil {
					return err
				}
				if got != want {
					fmt.Printf("marker %d: snapshot of %s DIFFERS from the ground truth\n", m.Seq, key)
					failures++
				}
			}
			checked++
		}
		fmt.Printf("markers: %d snapshotted, %d checked against the ground truth (%d disks each)\n", len(markers), checked, len(spec.Disks()))
		if checked == 0 {
			return fmt.Errorf("no marker of the ground truth was found on the target")
		}
	}
	if failures > 0 {
		return fmt.Errorf("%d differences", failures)
	}
	fmt.Println("verified: every target disk and every marker snapshot is byte-identical to the source")
	return nil
}

// sameAsSource compares a disk (target or materialized) with its source file, byte for byte.
func sameAsSource(ctx context.Context, c common, pages replication.PageStore, ref replication.DiskRef, d replication.DiskRefSpec) (bool, error) {
	src, err := os.Open(sourcePath(c, d))
	if err != nil {
		return false, err
	}
	defer src.Close()
	return compareDisk(ctx, pages, ref, "", src, d.Spec.SizeBytes)
}

func sourcePath(c common, d replication.DiskRefSpec) string {
	if p, ok := strings.CutPrefix(d.Spec.Source, "file:"); ok {
		return p
	}
	return filepath.Join(c.state, c.group, d.VM, d.Spec.Name+".img")
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

func readTruth(path string) (map[int64]Truth, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	out := map[int64]Truth{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		var t Truth
		if err := json.Unmarshal(sc.Bytes(), &t); err != nil {
			return nil, fmt.Errorf("%s: %w", path, err)
		}
		out[t.Seq] = t
	}
	return out, sc.Err()
}

// verifyContainer compares the disks materialized in a container (by a test failover or a failover)
// with the sources, or with the ground truth at marker seq.
func verifyContainer(ctx context.Context, c common, view apiv1.GroupView, container, truthFile string, seq int64) error {
	pages, err := pageStore("StandbyTargetStorage")
	if err != nil {
		return err
	}
	spec := replication.GroupSpec{VMs: view.VMs}
	var truth Truth
	if seq > 0 {
		truths, err := readTruth(truthFile)
		if err != nil {
			return err
		}
		var ok bool
		if truth, ok = truths[seq]; !ok {
			return fmt.Errorf("no ground truth at marker %d", seq)
		}
	}
	failures := 0
	for _, d := range spec.Disks() {
		ref := replication.DiskRef{Container: container, Name: d.Key}
		var same bool
		if seq > 0 {
			got, err := hashDisk(ctx, pages, ref, "", d.Spec.SizeBytes)
			if err != nil {
				return err
			}
			same = got == truth.Disks[d.Key]
		} else if same, err = sameAsSource(ctx, c, pages, ref, d); err != nil {
			return err
		}
		status := "identical"
		if !same {
			status, failures = "DIFFERENT", failures+1
		}
		against := "its source"
		if seq > 0 {
			against = fmt.Sprintf("the ground truth at marker %d", seq)
		}
		fmt.Printf("disk %-14s in %s: %s to %s\n", d.Key, container, status, against)
	}
	if failures > 0 {
		return fmt.Errorf("%d differences", failures)
	}
	return nil
}
