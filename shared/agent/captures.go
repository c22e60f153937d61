package agent

import (
	"context"
	"fmt"

	"github.com/standby-dr/standby/shared/replication"
)

// capture is how the agent captures one kind of disk source (replication.SourceKind): one file per kind,
// source_<kind>.go, which registers it in captures. The agent's opening, scanning and NBD serving look
// a disk's kind up and know none of them; a new capture mechanism is one such file (and its package).
type capture interface {
	// open readies disk d for capture: its file, or the tracking of its snapshots.
	open(ctx context.Context, a *Agent, d replication.DiskRefSpec, src replication.Source) error
	// scan streams what changed on the disk since the last pass and says how many bytes it sent; kinds
	// whose every write comes through the agent find nothing.
	scan(ctx context.Context, s *Scanner, d replication.DiskRefSpec) (int64, error)
	// exported: the disk is served as an NBD export <vm>/<disk>.
	exported() bool
}

var captures = map[replication.SourceKind]capture{}

// captureOf is the capture of the disk's source kind, and the parsed source.
func captureOf(d replication.DiskRefSpec) (capture, replication.Source, error) {
	src, err := replication.ParseSource(d.Spec.Source)
	if err != nil {
		return nil, src, fmt.Errorf("disk %s: source %v", d.Key, err)
	}
	c, ok := captures[src.Kind]
	if !ok {
		return nil, src, fmt.Errorf("disk %s: source %q is not supported by this agent", d.Key, d.Spec.Source)
	}
	return c, src, nil
}

// openFile opens the image or device of a file: or nbd: disk and keeps it as the disk's file.
func (a *Agent) openFile(d replication.DiskRefSpec, path string) error {
	f, err := openFileSource(d, path)
	if err != nil {
		return err
	}
	a.files[d.Key], a.sizes[d.Key] = f, d.Spec.SizeBytes
	return nil
}
