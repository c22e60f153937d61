package agent

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/standby-dr/standby/shared/replication"
)

// The agent opens only paths its own configuration gives: a file: source that only the API names is
// refused, a local one replaces it; and it never creates, extends or opens a directory as a disk.
func TestAgentTrustsOnlyItsOwnSources(t *testing.T) {
	fromAPI := replication.GroupSpec{VMs: []replication.VMSpec{{Name: "vm", Disks: []replication.DiskSpec{
		{Name: "os", SizeBytes: 1 << 20, Source: "file:/etc/shadow"}, {Name: "data", SizeBytes: 1 << 20, Source: "agent"}}}}}
	spec := fromAPI
	spec.VMs = []replication.VMSpec{fromAPI.VMs[0]}
	spec.VMs[0].Disks = append([]replication.DiskSpec(nil), fromAPI.VMs[0].Disks...)
	if err := trustLocalSources(&spec, nil, nil); err == nil || !strings.Contains(err.Error(), "disk vm/os: the group names file:/etc/shadow") {
		t.Fatalf("a path only the API names: %v", err)
	}
	if err := trustLocalSources(&spec, nil, map[string]string{"vm/os": "/dev/sdb"}); err != nil || spec.VMs[0].Disks[0].Source != "file:/dev/sdb" {
		t.Fatalf("a local source: %v, %s", err, spec.VMs[0].Disks[0].Source)
	}
	if err := trustLocalSources(&spec, nil, map[string]string{"vm/nope": "/dev/sdc"}); err == nil {
		t.Fatal("a local source for a disk the group does not have was accepted")
	}

	dir := t.TempDir()
	small := filepath.Join(dir, "small.img")
	os.WriteFile(small, make([]byte, 32), 0o644)
	d := replication.DiskRefSpec{Key: "vm/os", Spec: replication.DiskSpec{Name: "os", SizeBytes: 1 << 20}}
	for path, want := range map[string]string{small: "has 32 bytes, the group says 1048576", dir: "is a directory", filepath.Join(dir, "missing.img"): "no such file"} {
		if _, err := openFileSource(d, path); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: %v, want %q", path, err, want)
		}
	}
	if info, _ := os.Stat(small); info.Size() != 32 {
		t.Fatalf("the small file was extended to %d bytes", info.Size())
	}
	if _, err := os.Stat(filepath.Join(dir, "missing.img")); err == nil {
		t.Fatal("a missing file was created")
	}
}
