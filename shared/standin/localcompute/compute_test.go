package localcompute_test

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/standby-dr/standby/shared/protocol/vhd"
	"github.com/standby-dr/standby/shared/recovery"
	"github.com/standby-dr/standby/shared/replication"
	"github.com/standby-dr/standby/shared/standin/localcompute"
	"github.com/standby-dr/standby/shared/standin/memstore"
	"github.com/standby-dr/standby/shared/testkit/testenv"
)

// fakeLauncher stands in for QEMU here: the VM is "up" once started (tests/ boots real ones).
type fakeLauncher struct {
	mu      sync.Mutex
	started []localcompute.MachineSpec
	stopped map[int]bool
}

func (l *fakeLauncher) Start(_ context.Context, vm localcompute.MachineSpec) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.started = append(l.started, vm)
	return len(l.started), nil
}
func (l *fakeLauncher) Running(pid int) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return pid > 0 && pid <= len(l.started) && !l.stopped[pid]
}
func (l *fakeLauncher) Stop(pid int) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.stopped[pid] = true
	return nil
}
func (l *fakeLauncher) Healthy(string) (bool, string) { return true, "" }

type rig struct {
	compute  *localcompute.Compute
	launcher *fakeLauncher
	pages    *memstore.Pages
	vm       replication.VMSpec
	targets  replication.TargetResources
}

// newRig has one VM's disks as VHD copies in the target store: an OS disk with a footer, and a data
// disk whose footer is left out when raw is true.
func newRig(t *testing.T, raw bool) *rig {
	ctx := context.Background()
	r := &rig{launcher: &fakeLauncher{stopped: map[int]bool{}}, pages: memstore.NewPages()}
	var err error
	spec := replication.GroupSpec{Network: replication.NetworkSpec{Mappings: []replication.NetworkMapping{{Source: "s/app", Target: "v/app", Test: "t/app",
		TargetPrefix: "10.2.0.0/24", TestPrefix: "10.3.0.0/24"}}},
		VMs: []replication.VMSpec{{Name: "web", Subnet: "s/app", Disks: []replication.DiskSpec{{Name: "os", SizeBytes: 4 << 20, Source: "agent"}, {Name: "data", SizeBytes: 2 << 20, Source: "agent"}}}}}
	spec.Normalize("g1")
	r.vm = spec.VMs[0]
	r.pages.EnsureContainer(ctx, "g1-failover")
	for i, d := range r.vm.Disks {
		ref := replication.DiskRef{Container: "g1-failover", Name: "web/" + d.Name}
		r.pages.Create(ctx, ref, d.SizeBytes+vhd.FooterSize)
		r.pages.WritePages(ctx, ref, 1<<20, bytes.Repeat([]byte{byte(7 + i)}, 4096))
		if raw && i == 1 {
			continue
		}
		f, _ := vhd.NewFixed(d.SizeBytes, vhd.NewID(), time.Now())
		footer := f.Bytes()
		r.pages.WritePages(ctx, ref, d.SizeBytes, footer[:])
	}
	r.compute = &localcompute.Compute{Dir: t.TempDir(), Types: testenv.PublishedTypes(t), Pages: r.pages, Launcher: r.launcher, Log: slog.New(slog.DiscardHandler)}
	if r.targets, err = (recovery.TargetSite{Compute: r.compute}).Provision(ctx, "g1", spec); err != nil || r.targets.State != recovery.DeploymentSucceeded {
		t.Fatalf("target resources %+v: %v", r.targets, err)
	}
	return r
}

func (r *rig) deployment(edit func(t *recovery.Template)) recovery.DeploymentRequest {
	tpl, values := recovery.MachineDeployment(recovery.MachinePlan{VM: r.vm, Subnet: "v/app", Suffix: "0123abcd",
		StorageAccountID: "/subscriptions/local/resourceGroups/local/providers/Microsoft.Storage/storageAccounts/devstoreaccount1",
		DiskURL:          func(key string) string { return r.pages.URL(replication.DiskRef{Container: "g1-failover", Name: key}) }})
	if edit != nil {
		edit(&tpl)
	}
	var req recovery.DeploymentRequest
	req.Properties.Mode, req.Properties.Template, req.Properties.Parameters = "Incremental", tpl, map[string]map[string]any{}
	for k, v := range values {
		req.Properties.Parameters[k] = map[string]any{"value": v}
	}
	return req
}

func TestDeployImportsBootsAndDeletes(t *testing.T) {
	ctx := context.Background()
	r := newRig(t, false)
	for range 2 { // the same deployment twice: one of everything
		if err := r.compute.Deploy(ctx, "g1-asr", "standby-0123abcd-web", r.deployment(nil)); err != nil {
			t.Fatal(err)
		}
	}
	d, err := r.compute.Deployment(ctx, "g1-asr", "standby-0123abcd-web")
	if err != nil || d.State != recovery.DeploymentSucceeded || len(d.Resources) != 4 || len(r.launcher.started) != 1 {
		t.Fatalf("deployment %+v (%v), %d VMs started", d, err, len(r.launcher.started))
	}
	vm := r.launcher.started[0]
	if len(vm.Disks) != 2 || !strings.HasSuffix(vm.Disks[0], "web-os-0123abcd.img") || vm.Isolated {
		t.Fatalf("VM booted from %v (isolated %v)", vm.Disks, vm.Isolated)
	}
	img, _ := os.ReadFile(vm.Disks[1])
	want, _ := r.pages.ReadRange(ctx, replication.DiskRef{Container: "g1-failover", Name: "web/data"}, "", 0, 2<<20)
	if !bytes.Equal(img, want) {
		t.Fatalf("the data disk's image (%d bytes) differs from its VHD's virtual bytes", len(img))
	}
	st, err := r.compute.VM(ctx, "g1-asr", "web-0123abcd")
	if err != nil || !st.Healthy || st.PowerState != "running" || !strings.HasSuffix(st.ID, "/virtualMachines/web-0123abcd") {
		t.Fatalf("VM %+v (%v)", st, err)
	}
	if err := r.compute.Delete(ctx, "g1-asr", d.Resources); err != nil {
		t.Fatal(err)
	}
	if _, err := r.compute.VM(ctx, "g1-asr", "web-0123abcd"); !errors.Is(err, replication.ErrNotFound) || !r.launcher.stopped[1] {
		t.Fatalf("after delete: %v, stopped %v", err, r.launcher.stopped)
	}
}

// What the resource providers would refuse is refused, naming the property, and nothing is kept.
func TestDeployRefusesWhatAzureRefuses(t *testing.T) {
	ctx := context.Background()
	vmRes := func(t *recovery.Template) map[string]any { return t.Resources[len(t.Resources)-1] }
	props := func(m map[string]any, key string) map[string]any { return m[key].(map[string]any) }
	cases := map[string]func(t *recovery.Template){
		"hardwarProfile": func(t *recovery.Template) {
			p := props(vmRes(t), "properties")
			p["hardwarProfile"] = p["hardwareProfile"]
		},
		"unmanaged disks were retired": func(t *recovery.Template) {
			props(props(vmRes(t), "properties"), "storageProfile")["osDisk"].(map[string]any)["vhd"] = map[string]any{"uri": "https://x/y.vhd"}
		},
		"an attached OS disk needs its OS type": func(t *recovery.Template) {
			delete(props(props(vmRes(t), "properties"), "storageProfile")["osDisk"].(map[string]any), "osType")
		},
		"a disk must be in its VM's zone": func(t *recovery.Template) { vmRes(t)["zones"] = []any{"2"} },
		"uses a function the local compute does not evaluate": func(t *recovery.Template) {
			vmRes(t)["location"] = "[listKeys('x', '2023-01-01').keys[0].value]"
		},
	}
	for want, edit := range cases {
		r := newRig(t, false)
		err := r.compute.Deploy(ctx, "g1-asr", "d1", r.deployment(edit))
		if !errors.Is(err, replication.ErrInvalid) || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: %v", want, err)
		}
		if _, err := r.compute.Deployment(ctx, "g1-asr", "d1"); !errors.Is(err, replication.ErrNotFound) || len(r.launcher.started) != 0 {
			t.Errorf("%s: a refused deployment was kept (%v) or started a VM", want, err)
		}
	}
	r := newRig(t, true)
	if err := r.compute.Deploy(ctx, "g1-asr", "d1", r.deployment(nil)); !errors.Is(err, replication.ErrInvalid) || !strings.Contains(err.Error(), "is not a fixed VHD") {
		t.Errorf("a data disk without a footer: %v", err)
	}
}
