// Package standins registers the local stand-ins — the embedded broker's change stream and the local
// compute's disk snapshots — with the settings reader of the source side (shared/backends/sourceside).
// A binary that imports it for its effect can run against the local stack: the handler always does
// (devhost runs the app that ships), the agent only when built with -tags standin (cmd/agent's
// standin.go), so the agent built for Azure links no SQLite and no local compute.
package standins

import (
	"context"
	"log/slog"

	"github.com/standby-dr/standby/shared/backends/sourceside"
	"github.com/standby-dr/standby/shared/replication"
	"github.com/standby-dr/standby/shared/standin/broker"
	"github.com/standby-dr/standby/shared/standin/localcompute"
)

func init() {
	sourceside.RegisterStandIns(sourceside.StandIns{Stream: stream, Snapshots: snapshots})
}

// stream is the embedded broker's hub, opened from its connection setting.
func stream(connection, hub string) (sourceside.Stream, error) {
	b, err := broker.OpenConnection(connection)
	if err != nil {
		return sourceside.Stream{}, err
	}
	return sourceside.Stream{Publisher: broker.NewChangePublisher(b, hub), Conn: sourceside.Conn{
		Close: func() { b.Close() },
		Check: func(ctx context.Context) error {
			_, err := b.PartitionCount(ctx, hub)
			return err
		}}}, nil
}

// snapshots is the local compute's snapshot service: its managed disks are page blobs of pages.
func snapshots(dir string, pages replication.PageStore, log *slog.Logger) replication.DiskSnapshots {
	return &localcompute.Compute{Dir: dir, Pages: pages, Log: log}
}
