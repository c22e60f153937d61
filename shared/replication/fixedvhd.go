package replication

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/standby-dr/standby/shared/protocol/vhd"
)

// Every replica is a fixed VHD, the format Azure imports into a managed disk: a page blob of the
// disk's virtual size (a whole number of MiB) plus a 512-byte footer (shared/protocol/vhd) written once when the
// blob is made. Apply, block hashes, resync and restore cover the virtual size only; the footer is never
// written again, and the server-side copies of a point's snapshots keep it, so every materialized disk
// is an importable VHD too.

// footerSize is what a replica holds past its disk's virtual size.
const footerSize = vhd.FooterSize

// maxVirtualSize is the largest disk: the page blob (at most MaxDiskSize) also holds the footer.
const maxVirtualSize = MaxDiskSize - vhd.MiB

// BlobName is the page blob of a disk (key "vm/disk") in a container of replicas or materialized disks.
func BlobName(key string) string { return key + ".vhd" }

// DiskIn is the page blob of a disk in a container (a materialized point: test failover, failover).
func DiskIn(container, key string) DiskRef { return DiskRef{Container: container, Name: BlobName(key)} }

// CreateFixedVHD makes a page blob that is a fixed VHD of size bytes: the blob, then its footer (a
// new unique id, the time now). It answers ErrConflict when the blob exists.
func CreateFixedVHD(ctx context.Context, pages PageStore, ref DiskRef, size int64, now time.Time) error {
	footer, err := newFooter(ref, size, now)
	if err != nil {
		return err
	}
	if err := pages.Create(ctx, ref, size+footerSize); err != nil {
		return err
	}
	return pages.WritePages(ctx, ref, size, footer)
}

func newFooter(ref DiskRef, size int64, now time.Time) ([]byte, error) {
	f, err := vhd.NewFixed(size, vhd.NewID(), now)
	if err != nil {
		return nil, fmt.Errorf("%w: %s: %v", ErrInvalid, ref, err)
	}
	b := f.Bytes()
	return b[:], nil
}

// ReadFooter reads the footer of a disk (or its snapshot) whose virtual size is size and checks that
// it is a fixed VHD's of that size; a footer that is not is ErrConflict, saying why.
func ReadFooter(ctx context.Context, pages PageStore, ref DiskRef, snapshot string, size int64) (vhd.Footer, error) {
	data, err := pages.ReadRange(ctx, ref, snapshot, size, footerSize)
	if err != nil {
		return vhd.Footer{}, err
	}
	f, err := vhd.Parse(data)
	if err != nil {
		return f, notFixedVHD(fmt.Sprintf("%s has no fixed VHD footer after its %d bytes (%v)", ref, size, err))
	}
	if f.CurrentSize != uint64(size) {
		return f, notFixedVHD(fmt.Sprintf("the VHD footer of %s says %d bytes, the disk has %d", ref, f.CurrentSize, size))
	}
	return f, nil
}

// notFixedVHD says why a blob is not the fixed VHD of its disk; it is an ErrConflict.
type notFixedVHD string

func (e notFixedVHD) Error() string { return string(e) }
func (e notFixedVHD) Unwrap() error { return ErrConflict }

// CheckFixedVHD checks that a page blob is a fixed VHD of a disk of size bytes: size+512 bytes, its
// footer intact. ErrNotFound: no such blob; ErrConflict: it is not, and the error says why.
func CheckFixedVHD(ctx context.Context, pages PageStore, ref DiskRef, size int64) error {
	got, err := pages.Size(ctx, ref)
	if err != nil {
		return err
	}
	if got != size+footerSize {
		return notFixedVHD(fmt.Sprintf("%s has %d bytes, a fixed VHD of the disk's %d bytes has %d", ref, got, size, size+footerSize))
	}
	_, err = ReadFooter(ctx, pages, ref, "", size)
	return err
}

// ensureFixedVHD makes a replica, or accepts the one an earlier attempt made: a fixed VHD of the
// disk's size, or the blob of an attempt that crashed before it wrote the footer (written now).
func ensureFixedVHD(ctx context.Context, pages PageStore, ref DiskRef, size int64, now time.Time) error {
	err := CreateFixedVHD(ctx, pages, ref, size, now)
	if !errors.Is(err, ErrConflict) {
		return err
	}
	got, err := pages.Size(ctx, ref)
	if err != nil {
		return err
	}
	if got == size+footerSize {
		tail, err := pages.ReadRange(ctx, ref, "", size, footerSize)
		if err != nil {
			return err
		}
		if IsZero(tail) {
			footer, err := newFooter(ref, size, now)
			if err != nil {
				return err
			}
			return pages.WritePages(ctx, ref, size, footer)
		}
	}
	return CheckFixedVHD(ctx, pages, ref, size)
}

// CheckExtents refuses a batch that writes outside the group's disks: a disk the group does not have,
// or past a disk's virtual size (which would overwrite its VHD footer).
func (g *Group) CheckExtents(b *Batch) error {
	sizes := map[string]int64{}
	for _, d := range g.Spec.Disks() {
		sizes[d.Key] = d.Spec.SizeBytes
	}
	for _, e := range b.Extents {
		size, ok := sizes[e.Disk]
		switch {
		case !ok:
			return fmt.Errorf("%w: an extent of disk %q, which the group does not have", ErrCorrupt, e.Disk)
		case e.Offset+e.Length > size:
			return fmt.Errorf("%w: the extent [%d, +%d) of %s runs past its %d bytes", ErrCorrupt, e.Offset, e.Length, e.Disk, size)
		}
	}
	return nil
}
