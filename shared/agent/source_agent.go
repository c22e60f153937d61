package agent

import (
	"context"
	"fmt"
	"os"
	"path/filepath"

	"github.com/standby-dr/standby/shared/replication"
)

// agent: the disk's writes arrive through the agent's write API only (Agent.Write), onto an image the
// agent keeps in its state directory, which starts sparse, all zeros. Nothing to scan for.
type agentCapture struct{}

func init() { captures[replication.SourceAgent] = agentCapture{} }

func (agentCapture) open(_ context.Context, a *Agent, d replication.DiskRefSpec, _ replication.Source) error {
	path := filepath.Join(a.cfg.StateDir, a.cfg.Group, d.VM, d.Spec.Name+".img")
	os.MkdirAll(filepath.Dir(path), 0o755)
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return fmt.Errorf("disk %s: %w", d.Key, err)
	}
	info, err := f.Stat()
	if err == nil && info.Size() < d.Spec.SizeBytes {
		err = f.Truncate(d.Spec.SizeBytes)
	}
	if err != nil {
		f.Close()
		return fmt.Errorf("disk %s: %w", d.Key, err)
	}
	a.files[d.Key], a.sizes[d.Key] = f, d.Spec.SizeBytes
	return nil
}

func (agentCapture) scan(context.Context, *Scanner, replication.DiskRefSpec) (int64, error) {
	return 0, nil
}

func (agentCapture) exported() bool { return false }
