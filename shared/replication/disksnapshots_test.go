package replication

import (
	"errors"
	"strings"
	"testing"
)

// A managed: source must name a managed disk by its resource id, and its capture says plainly that its
// points are consistent per disk only.
func TestManagedSources(t *testing.T) {
	spec := func(source string) *GroupSpec {
		s := &GroupSpec{VMs: []VMSpec{{Name: "db", Disks: []DiskSpec{{Name: "data", SizeBytes: 1 << 20, Source: source}}}}}
		s.Normalize("g1")
		return s
	}
	good := "managed:/subscriptions/00000000-0000-0000-0000-000000000001/resourceGroups/src-rg/providers/Microsoft.Compute/disks/db-data"
	if err := spec(good).Validate(); err != nil {
		t.Fatal(err)
	}
	for _, bad := range []string{"managed:", "managed:db-data", "managed:/subscriptions/s/resourceGroups/r/providers/Microsoft.Compute/snapshots/x",
		"managed:/subscriptions/s/resourceGroups/r/providers/Microsoft.Compute/disks/../../x", "managed:https://a.blob.core.windows.net/c/d"} {
		if err := spec(bad).Validate(); err == nil || !strings.Contains(err.Error(), "managed:<disk resource id>") {
			t.Errorf("%q: %v", bad, err)
		}
	}
	c := spec(good).Captures()[0]
	if c.Mode != "managed" || c.CrashConsistent || !strings.Contains(c.Note, "not across") {
		t.Errorf("capture %+v", c)
	}
	d, err := ParseManagedDiskID(strings.TrimPrefix(good, "managed:"))
	if err != nil || d.ResourceGroup != "src-rg" || d.Name != "db-data" {
		t.Fatalf("%+v %v", d, err)
	}
	id, err := SnapshotIDOf(d, TrackingSnapshotName("g1", "db/data", 1764460800000))
	if err != nil || !strings.HasSuffix(id, "/resourceGroups/src-rg/providers/Microsoft.Compute/snapshots/"+TrackingSnapshotName("g1", "db/data", 1764460800000)) {
		t.Fatalf("%s %v", id, err)
	}
	if _, err := SnapshotIDOf(d, "bad/name"); !errors.Is(err, ErrInvalid) {
		t.Fatalf("a name with a slash: %v", err)
	}
	if n := TrackingSnapshotName(strings.Repeat("g", 200), strings.Repeat("d", 200), 1<<62); len(n) > 80 {
		t.Fatalf("snapshot name of %d characters: Azure takes 80", len(n))
	}
}
