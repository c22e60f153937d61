package agent

import (
	"context"
	"strings"

	"github.com/standby-dr/standby/shared/replication"
)

// Scanner finds writes to file-backed disks that did not come through the write API (another process
// writing the image or the block device) by hashing blocks and comparing them with the last pass,
// Site Recovery's fallback when no change tracking is available. A changed block is read again under
// the write lock, so what goes into the stream is the block as it is at that point of the stream.
type Scanner struct {
	a     *Agent
	known map[string][]string // disk → block hashes as last sent or seen
}

// NewScanner returns a scanner over the agent's file: disks. Its first pass only learns the disks
// (call it right after a baseline, when the target equals the source).
func (a *Agent) NewScanner() *Scanner {
	return &Scanner{a: a, known: map[string][]string{}}
}

// Pass hashes every block of every file: disk once, and diffs every pageblob: or managed: disk's new snapshot
// against the last one, and streams the blocks that changed since the last pass; it returns how many
// bytes it sent.
func (s *Scanner) Pass(ctx context.Context) (int64, error) {
	var sent int64
	for _, d := range s.a.cfg.Disks {
		if _, snapshotted := s.a.snaps[d.Key]; snapshotted {
			n, err := s.a.scanSnapshotDisk(ctx, d)
			sent += n
			if err != nil {
				return sent, err
			}
			continue
		}
		if !strings.HasPrefix(d.Spec.Source, "file:") {
			continue
		}
		f := s.a.files[d.Key]
		blocks := int((d.Spec.SizeBytes + BlockSize - 1) / BlockSize)
		known, learned := s.known[d.Key]
		if !learned {
			known = make([]string, blocks)
		}
		buf := make([]byte, BlockSize)
		for i := 0; i < blocks; i++ {
			if err := ctx.Err(); err != nil {
				return sent, err
			}
			off := int64(i) * BlockSize
			n := min(int64(BlockSize), d.Spec.SizeBytes-off)
			if _, err := f.ReadAt(buf[:n], off); err != nil {
				return sent, err
			}
			h := BlockHash(buf[:n])
			if !learned {
				known[i] = h
				continue
			}
			if h == known[i] {
				continue
			}
			s.a.mu.Lock()
			data := make([]byte, n)
			_, err := f.ReadAt(data, off)
			if err == nil {
				s.a.appendLocked(replication.Extent{Disk: d.Key, Offset: off, Length: n, Data: data})
				known[i] = BlockHash(data)
			}
			s.a.mu.Unlock()
			if err != nil {
				return sent, err
			}
			sent += n
		}
		s.known[d.Key] = known
	}
	return sent, nil
}
