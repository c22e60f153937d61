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

// WriteZeroes zeroes length bytes at offset of a disk and journals them as zero extents, in completion
// order like Write.
func (a *Agent) WriteZeroes(disk string, offset, length int64) error {
	f, err := a.writable(disk, offset, length)
	if err != nil {
		return err
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.closed {
		return errors.New("agent closed")
	}
	for done := int64(0); done < length; {
		n := min(length-done, zeroChunk)
		for at := int64(0); at < n; at += int64(len(zeros)) {
			if _, err := f.WriteAt(zeros[:min(n-at, int64(len(zeros)))], offset+done+at); err != nil {
				return err
			}
		}
		a.appendLocked(replication.Extent{Disk: disk, Offset: offset + done, Length: n, Zero: true})
		done += n
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
