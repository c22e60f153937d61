package agent

import (
	"errors"
	"fmt"

	"github.com/standby-dr/standby/shared/replication"
)

// The agent as a block device: what its NBD export (nbdexport.go) asks of a disk besides Write. Reads
// come from the disk's own file; zeroing joins the stream like any write, as zero extents.

// DiskSize is a disk's size in bytes (0 for a disk the agent does not hold).
func (a *Agent) DiskSize(disk string) int64 { return a.sizes[disk] }

// ReadDisk reads a disk's current bytes.
func (a *Agent) ReadDisk(disk string, p []byte, offset int64) (int, error) {
	f, ok := a.files[disk]
	if !ok {
		return 0, fmt.Errorf("no disk %q in group %s", disk, a.cfg.Group)
	}
	return f.ReadAt(p, offset)
}

// zeroChunk is the largest zero range written (and journaled as one zero extent) at once.
const zeroChunk = MaxWriteBytes

var zeros = make([]byte, 1<<20)

// WriteZeroes zeroes length bytes at offset of a disk, keeping them provisioned, and journals them
// as zero extents, in completion order like Write.
func (a *Agent) WriteZeroes(disk string, offset, length int64) error {
	return a.zero(disk, offset, length, true)
}

// Trim zeroes length bytes at offset of a disk, deallocating them where its file allows: a client may
// assume nothing of a trimmed range (proto.md, NBD_CMD_TRIM), and zeros keep the replica
// byte-identical. A whole-disk trim (mkfs sends one) costs a hole punch, not a write of the disk.
func (a *Agent) Trim(disk string, offset, length int64) error {
	return a.zero(disk, offset, length, false)
}

// zero makes the range read as zeros — without writing them where the file system or device can
// (zeroRange), else written a MiB at a time — and journals zero extents. The lock is held throughout:
// the file's order and the stream's must agree for the range, and what is left of the work (a hole
// punch, an extent per zeroChunk) is small.
func (a *Agent) zero(disk string, offset, length int64, provision bool) error {
	f, err := a.writable(disk, offset, length)
	if err != nil {
		return err
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.closed {
		return errors.New("agent closed")
	}
	done, err := zeroRange(f, offset, length, provision)
	if err != nil {
		return fmt.Errorf("zeroing %d bytes at %d of %s: %w", length, offset, disk, err)
	}
	for at := int64(0); at < length; {
		n := min(length-at, zeroChunk)
		for w := int64(0); !done && w < n; w += int64(len(zeros)) {
			if _, err := f.WriteAt(zeros[:min(n-w, int64(len(zeros)))], offset+at+w); err != nil {
				return err
			}
		}
		a.appendLocked(replication.Extent{Disk: disk, Offset: offset + at, Length: n, Zero: true})
		at += n
	}
	a.statsMu.Lock()
	a.stats.Writes++
	a.statsMu.Unlock()
	return nil
}

// SyncDisk makes every write the disk has taken durable on its file.
func (a *Agent) SyncDisk(disk string) error {
	f, ok := a.files[disk]
	if !ok {
		return fmt.Errorf("no disk %q in group %s", disk, a.cfg.Group)
	}
	return f.Sync()
}
