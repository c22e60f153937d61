package replication

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// Seeding makes a reprotect's targets from the original VMs' managed disks: each disk is exported (read
// access for a while: a SAS URL in Azure) and copied server-side, within this region, into a fixed VHD
// page blob; the reversed group then replicates into those blobs, and its first sync compares block
// checksums with them and sends only the blocks that differ. Nothing is recorded but the blobs: a copy's
// state is the blob's own, so every call simply looks and does the next thing.

// DiskExporter grants read access to managed disks (the Compute port does).
type DiskExporter interface {
	ExportDisk(ctx context.Context, diskID string, valid time.Duration) (string, error)
	EndExport(ctx context.Context, diskID string) error
}

// SeedDisk is one disk to seed: its key in the group, the managed disk it comes from, its size.
type SeedDisk struct {
	Key         string `json:"key"`
	ManagedDisk string `json:"managedDisk"`
	SizeBytes   int64  `json:"sizeBytes"`
}

// SeedRequest asks for disks to be seeded into a container of this site's target storage.
type SeedRequest struct {
	Container string     `json:"container"`
	Disks     []SeedDisk `json:"disks"`
}

// seedProgress is one disk's copy.
type seedProgress struct {
	Key    string `json:"key"`
	Blob   string `json:"blob"`
	State  string `json:"state"` // copying, done, failed
	Copied int64  `json:"copiedBytes"`
	Total  int64  `json:"totalBytes"`
	Error  string `json:"error,omitempty"`
}

// SeedStatus is every disk's copy; Done once all are done.
type SeedStatus struct {
	Done  bool           `json:"done"`
	Disks []seedProgress `json:"disks"`
}

// exportValidity is how long an export stays readable: long enough for a large disk's copy.
const exportValidity = 8 * time.Hour

// Seed starts, follows and finishes the copies the request asks for; call it again until Done.
func (s *Groups) Seed(ctx context.Context, group string, req SeedRequest) (SeedStatus, error) {
	if err := s.needStorage(); err != nil {
		return SeedStatus{}, err
	}
	if s.Exporter == nil {
		return SeedStatus{}, fmt.Errorf("%w: managed disks are exported through the compute (set StandbyCompute)", ErrNotConfigured)
	}
	if err := req.validate(group); err != nil {
		return SeedStatus{}, fmt.Errorf("%w: %v", ErrInvalid, err)
	}
	if err := s.Pages.EnsureContainer(ctx, req.Container); err != nil {
		return SeedStatus{}, err
	}
	st := SeedStatus{Done: true}
	for _, d := range req.Disks {
		p, err := s.seedDisk(ctx, req.Container, d)
		if err != nil {
			return SeedStatus{}, fmt.Errorf("seeding %s from %s: %w", d.Key, d.ManagedDisk, err)
		}
		st.Done = st.Done && p.State == "done"
		st.Disks = append(st.Disks, p)
	}
	return st, nil
}

func (r SeedRequest) validate(group string) error {
	if err := CheckGroupName(group); err != nil {
		return err
	}
	if !containerName.MatchString(r.Container) {
		return fmt.Errorf("container: %q is not a container name", r.Container)
	}
	if len(r.Disks) == 0 || len(r.Disks) > MaxVMsPerGroup*MaxDisksPerVM {
		return fmt.Errorf("disks: %d, want 1 to %d", len(r.Disks), MaxVMsPerGroup*MaxDisksPerVM)
	}
	seen := map[string]bool{}
	for i, d := range r.Disks {
		if CheckDiskKey(d.Key) != nil || seen[d.Key] {
			return fmt.Errorf("disks[%d].key: %q is not a vm/disk key, or is given twice", i, d.Key)
		}
		seen[d.Key] = true
		if !managedDiskID.MatchString(d.ManagedDisk) {
			return fmt.Errorf("disks[%d].managedDisk: %q is not a managed disk's resource id", i, d.ManagedDisk)
		}
		if d.SizeBytes <= 0 || d.SizeBytes%(1<<20) != 0 || d.SizeBytes > MaxDiskSize {
			return fmt.Errorf("disks[%d].sizeBytes: %d is not a whole number of MiB up to %d", i, d.SizeBytes, int64(MaxDiskSize))
		}
	}
	return nil
}

// seedDisk looks at the disk's blob and does the next thing: start the copy, report it, or finish it.
func (s *Groups) seedDisk(ctx context.Context, container string, d SeedDisk) (seedProgress, error) {
	ref := DiskIn(container, d.Key)
	p := seedProgress{Key: d.Key, Blob: ref.String(), Total: d.SizeBytes + footerSize}
	cs, err := s.Pages.CopyStatus(ctx, ref)
	if errors.Is(err, ErrNotFound) {
		if err := s.startSeed(ctx, d, ref); err != nil {
			return p, err
		}
		cs, err = s.Pages.CopyStatus(ctx, ref)
	}
	if err != nil {
		return p, err
	}
	switch cs.Status {
	case "pending":
		p.State, p.Copied = "copying", cs.Copied
		return p, nil
	case "failed", "aborted":
		// The next call starts again: the failed copy's blob goes.
		p.State, p.Error = "failed", fmt.Sprintf("the copy %s: %s", cs.Status, cs.Description)
		return p, s.Pages.Delete(ctx, ref)
	}
	// Copied (or a blob left by an earlier reprotect, which serves as well: only differing blocks go).
	if err := CheckFixedVHD(ctx, s.Pages, ref, d.SizeBytes); err != nil {
		return p, fmt.Errorf("the copy of %s is not the disk's fixed VHD: %w", d.ManagedDisk, err)
	}
	if err := s.Exporter.EndExport(ctx, d.ManagedDisk); err != nil {
		return p, err
	}
	p.State, p.Copied = "done", p.Total
	return p, nil
}

// startSeed exports the managed disk and starts its copy into ref.
func (s *Groups) startSeed(ctx context.Context, d SeedDisk, ref DiskRef) error {
	url, err := s.Exporter.ExportDisk(ctx, d.ManagedDisk, exportValidity)
	if err != nil {
		return err
	}
	if err := s.Pages.StartCopyFromURL(ctx, url, ref); err != nil {
		return err
	}
	s.Log.Info("seeding from a managed disk", "disk", d.Key, "blob", ref.String())
	return nil
}
