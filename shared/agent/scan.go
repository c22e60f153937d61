package agent

import (
	"context"
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
		c, _, err := captureOf(d)
		if err != nil {
			return sent, err
		}
		n, err := c.scan(ctx, s, d)
		sent += n
		if err != nil {
			return sent, err
		}
	}
	return sent, nil
}
