package localcompute_test

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/standby-dr/standby/shared/protocol/vhd"
	"github.com/standby-dr/standby/shared/recovery"
	"github.com/standby-dr/standby/shared/replication"
	"github.com/standby-dr/standby/shared/standin/memstore"
)

const rgID = "/subscriptions/local/resourceGroups/g1-asr"

// The target resources are made once: the recovery resource group, a virtual network per mapping
// network with its subnets, and nothing again when enabling again.
func TestTargetResourcesAreMadeOnce(t *testing.T) {
	ctx := context.Background()
	r := newRig(t, false)
	if r.targets.ResourceGroupID != rgID || len(r.targets.Created) != 4 || r.targets.Subnets["v/app"] != rgID+"/providers/Microsoft.Network/virtualNetworks/v/subnets/app" {
		t.Fatalf("target resources %+v", r.targets)
	}
	for _, id := range r.targets.Created {
		if ok, err := r.compute.Exists(ctx, id); !ok || err != nil {
			t.Fatalf("%s was not made (%v)", id, err)
		}
	}
	// An operator's network with room for more subnets: a new one goes in as a child resource.
	var big recovery.DeploymentRequest
	big.Properties.Mode = "Incremental"
	big.Properties.Template = recovery.Template{Schema: "https://schema.management.azure.com/schemas/2019-04-01/deploymentTemplate.json#", ContentVersion: "1.0.0.0",
		Resources: []map[string]any{{"type": "Microsoft.Network/virtualNetworks", "apiVersion": "2024-05-01", "name": "big", "location": "[resourceGroup().location]",
			"properties": map[string]any{"addressSpace": map[string]any{"addressPrefixes": []any{"10.8.0.0/16"}},
				"subnets": []any{map[string]any{"name": "a", "properties": map[string]any{"addressPrefix": "10.8.0.0/24"}}}}}}}
	if err := r.compute.Deploy(ctx, "g1-asr", "operator-network", big); err != nil {
		t.Fatal(err)
	}
	spec := replication.GroupSpec{Network: replication.NetworkSpec{Mappings: []replication.NetworkMapping{{Source: "s/app", Target: "v/app", Test: "t/app",
		TargetPrefix: "10.2.0.0/24", TestPrefix: "10.3.0.0/24"}, {Source: "s/db", Target: "big/db", TargetPrefix: "10.8.1.0/24"}}},
		VMs: []replication.VMSpec{{Name: "web", AvailabilitySet: "web-set"}}}
	again, err := recovery.TargetSite{Compute: r.compute}.Provision(ctx, "g1", spec)
	if err != nil || again.State != replication.TargetsSucceeded {
		t.Fatal(again, err)
	}
	// Only the missing subnet (a child of the existing network, which keeps its subnets) and the set.
	if len(again.Created) != 2 || !strings.HasSuffix(again.Created[0], "/virtualNetworks/big/subnets/db") || !strings.HasSuffix(again.Created[1], "/availabilitySets/web-set") {
		t.Fatalf("created %v", again.Created)
	}
	for _, sub := range []string{"/virtualNetworks/v/subnets/app", "/virtualNetworks/big/subnets/a", "/virtualNetworks/big/subnets/db", "/virtualNetworks/t/subnets/app"} {
		if ok, _ := r.compute.Exists(ctx, rgID+"/providers/Microsoft.Network"+sub); !ok {
			t.Fatalf("%s is gone", sub)
		}
	}
	third, err := recovery.TargetSite{Compute: r.compute}.Provision(ctx, "g1", spec)
	if err != nil || len(third.Created) != 0 || third.Deployment != "" {
		t.Fatalf("enabling again made %+v (%v)", third, err)
	}
}

// What the target cannot take is refused, naming the field, before anything is deployed.
func TestTargetResourcesRefusals(t *testing.T) {
	ctx := context.Background()
	r := newRig(t, false)
	site := recovery.TargetSite{Compute: r.compute}
	cases := map[string]replication.NetworkMapping{
		"network.mappings[0].targetPrefix: subnet w/app does not exist": {Source: "s/app", Target: "w/app"},
		"network.mappings[0].target: subnet " + rgID + "/providers/Microsoft.Network/virtualNetworks/x/subnets/y does not exist": {
			Source: "s/app", Target: rgID + "/providers/Microsoft.Network/virtualNetworks/x/subnets/y"},
	}
	for want, m := range cases {
		_, err := site.Provision(ctx, "g1", replication.GroupSpec{Network: replication.NetworkSpec{Mappings: []replication.NetworkMapping{m}}})
		if !errors.Is(err, replication.ErrInvalid) || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: %v", want, err)
		}
	}
	// A subnet that overlaps its network's subnet is refused by the network's rules.
	_, err := site.Provision(ctx, "g1", replication.GroupSpec{Network: replication.NetworkSpec{Mappings: []replication.NetworkMapping{
		{Source: "s/app", Target: "v/other", TargetPrefix: "10.2.0.128/25"}}}})
	if !errors.Is(err, replication.ErrInvalid) || !strings.Contains(err.Error(), "NetcfgSubnetRangesOverlap") {
		t.Errorf("overlap: %v", err)
	}
	_, err = site.Provision(ctx, "g1", replication.GroupSpec{Network: replication.NetworkSpec{Mappings: []replication.NetworkMapping{
		{Source: "s/app", Target: "v/other", TargetPrefix: "10.7.0.0/24"}}}})
	if !errors.Is(err, replication.ErrInvalid) || !strings.Contains(err.Error(), "NetcfgSubnetRangeOutsideVnet") {
		t.Errorf("outside the network: %v", err)
	}
}

// A VM's NIC needs its subnet, and a static IP inside it; a VM its availability set; a deployment its
// resource group.
func TestDeployRefusesMissingReferences(t *testing.T) {
	ctx := context.Background()
	r := newRig(t, false)
	r.vm.StaticIP = "10.9.9.9"
	if err := r.compute.Deploy(ctx, "g1-asr", "d1", r.deployment(nil)); !errors.Is(err, replication.ErrInvalid) || !strings.Contains(err.Error(), "PrivateIPAddressNotInSubnet") {
		t.Errorf("static IP outside the subnet: %v", err)
	}
	r.vm.StaticIP = "10.2.0.9"
	r.vm.AvailabilitySet = "nowhere"
	if err := r.compute.Deploy(ctx, "g1-asr", "d1", r.deployment(nil)); !errors.Is(err, replication.ErrInvalid) || !strings.Contains(err.Error(), "properties.availabilitySet.id") {
		t.Errorf("missing availability set: %v", err)
	}
	r.vm.AvailabilitySet = ""
	edit := func(tpl *recovery.Template) {}
	if err := r.compute.Deploy(ctx, "elsewhere", "d1", r.deployment(edit)); !errors.Is(err, replication.ErrInvalid) || !strings.Contains(err.Error(), "ResourceGroupNotFound") {
		t.Errorf("missing resource group: %v", err)
	}
	if err := r.compute.Deploy(ctx, "g1-asr", "d1", r.deployment(nil)); err != nil {
		t.Errorf("the fixed deployment: %v", err)
	}
}

// An exported disk reads as a fixed VHD of the image; a disk a running VM has attached is refused.
func TestExportDisk(t *testing.T) {
	ctx := context.Background()
	r := newRig(t, false)
	if err := r.compute.Deploy(ctx, "g1-asr", "d1", r.deployment(nil)); err != nil {
		t.Fatal(err)
	}
	diskID := rgID + "/providers/Microsoft.Compute/disks/web-data-0123abcd"
	if _, err := r.compute.ExportDisk(ctx, diskID, 0); !errors.Is(err, replication.ErrConflict) || !strings.Contains(err.Error(), "attached to the running VM web-0123abcd") {
		t.Fatalf("export of an attached disk: %v", err)
	}
	r.launcher.Stop(1)
	url, err := r.compute.ExportDisk(ctx, diskID, 0)
	if err != nil {
		t.Fatal(err)
	}
	ref, err := replication.PageBlobRef(url)
	if err != nil {
		t.Fatal(err)
	}
	img, _ := os.ReadFile(r.launcher.started[0].Disks[1])
	got, _ := r.pages.ReadRange(ctx, ref, "", 0, int64(len(img))+vhd.FooterSize)
	f, err := vhd.Parse(got[len(img):])
	if err != nil || f.CurrentSize != uint64(len(img)) || string(got[:len(img)]) != string(img) {
		t.Fatalf("export: footer %+v (%v), content equal %v", f, err, string(got[:len(img)]) == string(img))
	}
	if err := r.compute.EndExport(ctx, diskID); err != nil {
		t.Fatal(err)
	}
	if _, err := r.pages.Size(ctx, ref); !errors.Is(err, replication.ErrNotFound) {
		t.Fatalf("after EndExport: %v", err)
	}
	if err := r.compute.EndExport(ctx, diskID); err != nil {
		t.Fatalf("EndExport again: %v", err)
	}
}

// A reprotect's seeding exports the original managed disks and copies them into fixed VHD blobs of
// this site's storage; the exports end once the copies are done, and asking again changes nothing.
func TestSeedFromManagedDisks(t *testing.T) {
	ctx := context.Background()
	r := newRig(t, false)
	if err := r.compute.Deploy(ctx, "g1-asr", "d1", r.deployment(nil)); err != nil {
		t.Fatal(err)
	}
	svc := &replication.Groups{Deps: replication.Deps{State: memstore.NewState(), Pages: r.pages, Log: slog.New(slog.DiscardHandler), Now: time.Now}, Exporter: r.compute}
	req := replication.SeedRequest{Container: "g1-back", Disks: []replication.SeedDisk{
		{Key: "web/os", ManagedDisk: rgID + "/providers/Microsoft.Compute/disks/web-os-0123abcd", SizeBytes: 4 << 20},
		{Key: "web/data", ManagedDisk: rgID + "/providers/Microsoft.Compute/disks/web-data-0123abcd", SizeBytes: 2 << 20}}}
	if _, err := svc.Seed(ctx, "g1", req); !errors.Is(err, replication.ErrConflict) {
		t.Fatalf("seeding from disks a running VM has attached: %v", err)
	}
	r.launcher.Stop(1)
	for range 2 {
		st, err := svc.Seed(ctx, "g1", req)
		if err != nil || !st.Done || len(st.Disks) != 2 || st.Disks[1].State != "done" {
			t.Fatalf("seed: %+v (%v)", st, err)
		}
	}
	for i, d := range req.Disks {
		img, _ := os.ReadFile(r.launcher.started[0].Disks[i])
		got, _ := r.pages.ReadRange(ctx, replication.DiskIn("g1-back", d.Key), "", 0, d.SizeBytes)
		if !bytes.Equal(got, img) || replication.CheckFixedVHD(ctx, r.pages, replication.DiskIn("g1-back", d.Key), d.SizeBytes) != nil {
			t.Fatalf("%s's seeded blob is not its managed disk as a fixed VHD", d.Key)
		}
	}
	for _, name := range []string{"web-os-0123abcd", "web-data-0123abcd"} {
		if _, err := r.pages.Size(ctx, replication.DiskRef{Container: "standby-disk-exports", Name: "g1-asr/" + name + ".vhd"}); !errors.Is(err, replication.ErrNotFound) {
			t.Fatalf("the export of %s is left: %v", name, err)
		}
	}
	bad := req
	bad.Disks = []replication.SeedDisk{{Key: "web/os", ManagedDisk: "/subscriptions/x/disks/y", SizeBytes: 4 << 20}}
	if _, err := svc.Seed(ctx, "g1", bad); !errors.Is(err, replication.ErrInvalid) || !strings.Contains(err.Error(), "disks[0].managedDisk") {
		t.Fatalf("a bad disk id: %v", err)
	}
}
