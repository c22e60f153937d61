package proof

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/standby-dr/standby/shared/api/apiv1"
	"github.com/standby-dr/standby/shared/replication"
	"github.com/standby-dr/standby/shared/standin/memstore"
)

// The proof compares the virtual disk with its source and checks the VHD footer after it: a replica
// whose data matches but whose footer broke fails, and so does a materialized copy.
func TestProofChecksTheFooter(t *testing.T) {
	ctx := context.Background()
	src := filepath.Join(t.TempDir(), "os.img")
	data := append(bytes.Repeat([]byte{6}, 8192), make([]byte, 1<<20-8192)...)
	os.WriteFile(src, data, 0o644)
	view := apiv1.GroupView{VMs: []apiv1.VMSpec{{Name: "vm", Disks: []apiv1.DiskSpec{{Name: "os", SizeBytes: 1 << 20, Source: "file:" + src}}}},
		Target: apiv1.TargetSpec{Container: "g-asr"}}
	pages := memstore.NewPages()
	for _, container := range []string{"g-asr", "g-test"} {
		pages.EnsureContainer(ctx, container)
		ref := replication.DiskIn(container, "vm/os")
		replication.CreateFixedVHD(ctx, pages, ref, 1<<20, time.Now())
		pages.WritePages(ctx, ref, 0, data[:8192])
	}
	var out bytes.Buffer
	p := &Prover{Group: "g", Out: &out}
	if err := p.Target(ctx, pages, memstore.NewState(), view, ""); err != nil {
		t.Fatalf("%v\n%s", err, out.String())
	}
	if err := p.Container(ctx, pages, view, "g-test", "", 0); err != nil {
		t.Fatalf("%v\n%s", err, out.String())
	}
	for _, container := range []string{"g-asr", "g-test"} {
		pages.WritePages(ctx, replication.DiskIn(container, "vm/os"), 1<<20, make([]byte, 512))
	}
	out.Reset()
	err := p.Target(ctx, pages, memstore.NewState(), view, "")
	if err == nil || !strings.Contains(out.String(), "target identical; VHD footer BROKEN: g-asr/vm/os.vhd has no fixed VHD footer") {
		t.Fatalf("a broken footer passed the proof: %v\n%s", err, out.String())
	}
	out.Reset()
	err = p.Container(ctx, pages, view, "g-test", "", 0)
	if err == nil || !strings.Contains(out.String(), "identical; VHD footer BROKEN: g-test/vm/os.vhd") {
		t.Fatalf("a broken footer passed the proof of a copy: %v\n%s", err, out.String())
	}
}
