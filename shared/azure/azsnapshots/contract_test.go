package azsnapshots

import (
	"testing"
	"time"

	"github.com/standby-dr/standby/shared/testkit/fakearm"
	"github.com/standby-dr/standby/shared/testkit/snapshottest"
)

// The Azure adapter keeps the DiskSnapshots contract against the fake ARM's stateful disks.
func TestSnapshotsContract(t *testing.T) {
	snapshottest.Run(t, func(t *testing.T) snapshottest.Fixture {
		f := fakearm.New(t)
		disks := f.NewDisks("rg1")
		s, err := NewSnapshots(fakearm.Sub, fakearm.Credential{}, f.Options())
		if err != nil {
			t.Fatal(err)
		}
		log, _ := fakearm.Logger(t) // fails the test if a token or a signature reached the log
		s.PollInterval, s.Transport, s.Log = time.Millisecond, f.Srv.Client(), log
		return snapshottest.Fixture{Snapshots: s, NewDisk: func(t *testing.T, name string, size int64) snapshottest.Disk {
			id := disks.Create(name, size, nil)
			return snapshottest.Disk{ID: id, Size: size, Write: func(off int64, data []byte) { disks.Write(name, off, data) }}
		}}
	})
}
