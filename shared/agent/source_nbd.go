package agent

import (
	"context"

	"github.com/standby-dr/standby/shared/replication"
)

// nbd: a disk image or block device the agent serves as an NBD export <vm>/<disk> (nbdexport.go): the
// VM's every write goes through the export and joins the stream in completion order, so there is
// nothing to scan for.
type nbdCapture struct{}

func init() { captures[replication.SourceNBD] = nbdCapture{} }

func (nbdCapture) open(_ context.Context, a *Agent, d replication.DiskRefSpec, src replication.Source) error {
	return a.openFile(d, src.Ref)
}

func (nbdCapture) scan(context.Context, *Scanner, replication.DiskRefSpec) (int64, error) {
	return 0, nil
}

func (nbdCapture) exported() bool { return true }
