package agent

import (
	"context"

	"github.com/standby-dr/standby/shared/replication"
)

// file: a disk image or block device that other processes write, opened as it is. Its changes are
// found by hashing every block each pass and comparing with the last (Site Recovery's fallback when no
// change tracking is available); a changed block is read again under the write lock, so what goes
// into the stream is the block as it is at that point of the stream. Not crash-consistent.
type fileCapture struct{}

func init() { captures[replication.SourceFile] = fileCapture{} }

func (fileCapture) open(_ context.Context, a *Agent, d replication.DiskRefSpec, src replication.Source) error {
	return a.openFile(d, src.Ref)
}

// scan hashes every block of the disk and streams the ones that changed since the last pass; the
// first pass only learns the disk.
func (fileCapture) scan(ctx context.Context, s *Scanner, d replication.DiskRefSpec) (int64, error) {
	var sent int64
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
	return sent, nil
}

func (fileCapture) exported() bool { return false }
