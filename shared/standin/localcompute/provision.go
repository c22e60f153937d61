package localcompute

import (
	"context"
	"fmt"
	"os"
	"time"

	"github.com/standby-dr/standby/shared/protocol/vhd"
	"github.com/standby-dr/standby/shared/replication"
)

// provision makes one validated resource.
func (c *Compute) provision(ctx context.Context, rg string, r resource) error {
	switch r.Type {
	case "Microsoft.Compute/disks":
		return c.importDisk(ctx, rg, r)
	case "Microsoft.Network/virtualNetworks/subnets":
		return c.provisionSubnet(r)
	case "Microsoft.Network/networkInterfaces":
		if err := c.allocateAddress(rg, r); err != nil {
			return err
		}
		_, name := kindAndName(r.ID)
		return writeJSON(c.path(rg, "networkInterfaces", name+".json"), r.Body)
	case "Microsoft.Compute/availabilitySets", "Microsoft.Network/virtualNetworks":
		kind, name := kindAndName(r.ID)
		return writeJSON(c.path(rg, kind, name+".json"), r.Body)
	case "Microsoft.Compute/virtualMachines":
		return c.startVM(ctx, rg, r)
	}
	return fmt.Errorf("cannot provision %s", r.Type)
}

// importSource is the VHD a disk imports: its page blob and virtual size (the blob less its footer).
func (c *Compute) importSource(ctx context.Context, r resource) (replication.DiskRef, int64, error) {
	uri, _ := dig(r.Body, "properties", "creationData", "sourceUri").(string)
	ref, err := replication.PageBlobRef(uri)
	if err != nil {
		return ref, 0, fmt.Errorf("properties.creationData.sourceUri: %v", err)
	}
	size, err := c.Pages.Size(ctx, ref)
	if err != nil {
		return ref, 0, fmt.Errorf("properties.creationData.sourceUri: %s: %v", uri, err)
	}
	if size < vhd.FooterSize {
		return ref, 0, fmt.Errorf("properties.creationData.sourceUri: %s has %d bytes: not a VHD", uri, size)
	}
	return ref, size - vhd.FooterSize, nil
}

// checkImport refuses an Import whose source is not a fixed VHD: its last 512 bytes must be a valid
// footer whose current size is the rest of the blob, a whole number of MiB.
func (c *Compute) checkImport(ctx context.Context, r resource) error {
	if opt, _ := dig(r.Body, "properties", "creationData", "createOption").(string); opt != "Import" {
		return fmt.Errorf("properties.creationData.createOption: %q: failed-over disks are imported from their VHD copies", opt)
	}
	if id, _ := dig(r.Body, "properties", "creationData", "storageAccountId").(string); id == "" {
		return fmt.Errorf("properties.creationData.storageAccountId: required when createOption is Import")
	}
	ref, virtual, err := c.importSource(ctx, r)
	if err != nil {
		return err
	}
	tail, err := c.Pages.ReadRange(ctx, ref, "", virtual, vhd.FooterSize)
	if err != nil {
		return fmt.Errorf("properties.creationData.sourceUri: reading the footer: %v", err)
	}
	f, err := vhd.Parse(tail)
	if err != nil {
		return fmt.Errorf("properties.creationData.sourceUri: %s is not a fixed VHD: %v", ref, err)
	}
	if f.CurrentSize != uint64(virtual) {
		return fmt.Errorf("properties.creationData.sourceUri: %s: the footer says %d bytes, the blob holds %d before it", ref, f.CurrentSize, virtual)
	}
	return nil
}

// importDisk makes the disk's local image from its VHD: the virtual size, written sparsely (only the
// ranges the blob has allocated are read).
func (c *Compute) importDisk(ctx context.Context, rg string, r resource) error {
	_, name := kindAndName(r.ID)
	img := c.path(rg, "disks", name+".img")
	if _, err := os.Stat(img); err == nil {
		return writeJSON(c.path(rg, "disks", name+".json"), r.Body) // imported before
	}
	ref, virtual, err := c.importSource(ctx, r)
	if err != nil {
		return err
	}
	ranges, err := c.Pages.AllocatedRanges(ctx, ref, "")
	if err != nil {
		return err
	}
	if err := os.MkdirAll(c.path(rg, "disks"), 0o755); err != nil {
		return err
	}
	f, err := os.Create(img + ".tmp")
	if err != nil {
		return err
	}
	defer f.Close()
	if err := f.Truncate(virtual); err != nil {
		return err
	}
	for _, pr := range ranges {
		for off := pr.Offset; off < min(pr.End(), virtual); off += replication.MaxPageWrite {
			n := min(int64(replication.MaxPageWrite), min(pr.End(), virtual)-off)
			data, err := c.Pages.ReadRange(ctx, ref, "", off, n)
			if err != nil {
				return err
			}
			if _, err := f.WriteAt(data, off); err != nil {
				return err
			}
		}
	}
	if err := f.Close(); err != nil {
		return err
	}
	if err := os.Rename(img+".tmp", img); err != nil {
		return err
	}
	return writeJSON(c.path(rg, "disks", name+".json"), r.Body)
}

// startVM boots the VM from its disks' images, the OS disk first and the data disks by LUN; a VM whose
// process still runs is left as it is.
func (c *Compute) startVM(ctx context.Context, rg string, r resource) error {
	_, name := kindAndName(r.ID)
	file := c.path(rg, "vms", name, "vm.json")
	var existing vmFile
	if readJSON(file, &existing) == nil && c.Launcher.Running(existing.PID) {
		return nil
	}
	runSocket, err := runSocketOf(c.path(rg, "vms", name))
	if err != nil {
		return err
	}
	spec := MachineSpec{Name: name, SerialLog: c.path(rg, "vms", name, "serial.log"), RunSocket: runSocket}
	disks := []any{dig(r.Body, "properties", "storageProfile", "osDisk")}
	data, _ := dig(r.Body, "properties", "storageProfile", "dataDisks").([]any)
	byLUN := make([]any, len(data))
	for _, d := range data {
		lun, _ := dig(d, "lun").(float64)
		if int(lun) >= len(byLUN) || byLUN[int(lun)] != nil {
			return fmt.Errorf("properties.storageProfile.dataDisks: LUN %v is out of order or used twice", dig(d, "lun"))
		}
		byLUN[int(lun)] = d
	}
	for _, d := range append(disks, byLUN...) {
		id, _ := dig(d, "managedDisk", "id").(string)
		_, disk := kindAndName(id)
		spec.Disks = append(spec.Disks, c.path(rg, "disks", disk+".img"))
	}
	nicID, _ := dig(r.Body, "properties", "networkProfile", "networkInterfaces", 0, "id").(string)
	var nic map[string]any
	_, nicName := kindAndName(nicID)
	if err := readJSON(c.path(rg, "networkInterfaces", nicName+".json"), &nic); err != nil {
		return fmt.Errorf("properties.networkProfile.networkInterfaces[0].id: %v", err)
	}
	spec.Isolated = dig(nic, "tags", "standby-isolated") == "true"
	if spec.Isolated { // the test network: a segment of its own, the NIC's address on eth0
		if spec.Segment, spec.IP, err = c.testSegment(rg, nic); err != nil {
			return fmt.Errorf("properties.networkProfile.networkInterfaces[0]: %v", err)
		}
		spec.MAC = macOf(r.ID)
	}
	if err := os.MkdirAll(c.path(rg, "vms", name), 0o755); err != nil {
		return err
	}
	pid, err := c.Launcher.Start(ctx, spec)
	if err != nil {
		return err
	}
	c.Log.Info("VM started", "resourceGroup", rg, "vm", name, "pid", pid, "disks", len(spec.Disks), "isolated", spec.Isolated)
	return writeJSON(file, vmFile{ID: r.ID, PID: pid, Started: time.Now().UTC(), Spec: spec, Zones: r.Body["zones"]})
}
