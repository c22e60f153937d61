package localcompute

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/standby-dr/standby/shared/replication"
)

// EnsureResourceGroup creates the resource group (a directory) when missing; an existing one is used.
func (c *Compute) EnsureResourceGroup(_ context.Context, name string) (string, error) {
	if !replication.ValidResourceGroupName(name) {
		return "", fmt.Errorf("%w: resource group name %q: 1-90 letters, digits, '_', '-', '.', '(' or ')', not ending in '.'", replication.ErrInvalid, name)
	}
	id := "/subscriptions/local/resourceGroups/" + name
	if err := os.MkdirAll(c.path(name), 0o755); err != nil {
		return "", err
	}
	return id, writeJSON(c.path(name, "resourceGroup.json"), map[string]string{"id": id, "location": "local"})
}

// resourceGroupExists is ARM's first check of a deployment: "ResourceGroupNotFound" otherwise.
func (c *Compute) resourceGroupExists(rg string) error {
	if _, err := os.Stat(c.path(rg, "resourceGroup.json")); err != nil {
		return fmt.Errorf("%w: resource group '%s' could not be found (ResourceGroupNotFound)", replication.ErrInvalid, rg)
	}
	return nil
}

// idParts splits a resource id into its resource group and the type/name pairs after the provider
// namespace: /subscriptions/s/resourceGroups/rg/providers/Microsoft.Network/virtualNetworks/v/subnets/s
// gives rg, [virtualNetworks v subnets s].
func idParts(id string) (rg string, path []string, ok bool) {
	parts := strings.Split(strings.TrimPrefix(id, "/"), "/")
	if len(parts) < 4 || !strings.EqualFold(parts[0], "subscriptions") || !strings.EqualFold(parts[2], "resourceGroups") {
		return "", nil, false
	}
	rg = parts[3]
	if len(parts) == 4 {
		return rg, nil, true
	}
	if len(parts) < 8 || !strings.EqualFold(parts[4], "providers") || len(parts[6:])%2 != 0 {
		return "", nil, false
	}
	return rg, parts[6:], true
}

// Exists reports whether the resource the id names exists here.
func (c *Compute) Exists(ctx context.Context, id string) (bool, error) {
	rg, path, ok := idParts(id)
	if !ok {
		return false, fmt.Errorf("%w: %q is not a resource id", replication.ErrInvalid, id)
	}
	if _, err := os.Stat(c.path(rg, "resourceGroup.json")); err != nil || len(path) == 0 {
		return err == nil, nil
	}
	var file string
	switch path[0] {
	case "virtualMachines":
		file = c.path(rg, "vms", path[1], "vm.json")
	case "disks":
		file = c.path(rg, "disks", path[1]+".img")
		if ref, err := ManagedDiskBlob(id); err == nil && c.Pages != nil { // a source-region disk (CreateDisk)
			if _, err := c.Pages.Size(ctx, ref); err == nil {
				return true, nil
			}
		}
	case "virtualNetworks":
		if len(path) == 4 && path[2] == "subnets" {
			_, found, err := c.subnet(rg, path[1], path[3])
			return found, err
		}
		file = c.path(rg, "virtualNetworks", path[1]+".json")
	default:
		file = c.path(rg, path[0], path[1]+".json")
	}
	_, err := os.Stat(file)
	return err == nil, nil
}

// exportContainer holds the VHDs of exported disks in the page store (Azure serves them from storage
// of its own, behind the SAS URL an export returns).
const exportContainer = "standby-disk-exports"

func exportRef(rg, disk string) replication.DiskRef {
	return replication.DiskRef{Container: exportContainer, Name: rg + "/" + disk + ".vhd"}
}

// ExportDisk makes the managed disk readable as a fixed VHD: its image plus a footer, as a page blob.
// Like Azure, it refuses a disk a running VM has attached ("the disk must be unattached or its VM
// deallocated").
func (c *Compute) ExportDisk(ctx context.Context, diskID string, valid time.Duration) (string, error) {
	rg, path, ok := idParts(diskID)
	if !ok || len(path) != 2 || path[0] != "disks" {
		return "", fmt.Errorf("%w: %q is not a managed disk id", replication.ErrInvalid, diskID)
	}
	img := c.path(rg, "disks", path[1]+".img")
	if user, err := c.attachedTo(rg, img); err != nil || user != "" {
		if err == nil {
			err = fmt.Errorf("%w: disk %s is attached to the running VM %s: stop (deallocate) it before granting access", replication.ErrConflict, path[1], user)
		}
		return "", err
	}
	f, err := os.Open(img)
	if errors.Is(err, os.ErrNotExist) {
		return "", fmt.Errorf("disk %s: %w", diskID, replication.ErrNotFound)
	}
	if err != nil {
		return "", err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return "", err
	}
	ref := exportRef(rg, path[1])
	if err := c.Pages.EnsureContainer(ctx, exportContainer); err != nil {
		return "", err
	}
	if err := replication.CreateFixedVHD(ctx, c.Pages, ref, st.Size(), time.Now()); err != nil {
		return "", err
	}
	if err := copyNonZero(ctx, f, st.Size(), func(off int64, data []byte) error { return c.Pages.WritePages(ctx, ref, off, data) }); err != nil {
		return "", err
	}
	c.Log.Info("disk exported", "resourceGroup", rg, "disk", path[1], "bytes", st.Size(), "valid", valid)
	return c.Pages.URL(ref), nil
}

// EndExport revokes an export: its VHD goes.
func (c *Compute) EndExport(ctx context.Context, diskID string) error {
	rg, path, ok := idParts(diskID)
	if !ok || len(path) != 2 || path[0] != "disks" {
		return fmt.Errorf("%w: %q is not a managed disk id", replication.ErrInvalid, diskID)
	}
	err := c.Pages.Delete(ctx, exportRef(rg, path[1]))
	if errors.Is(err, replication.ErrNotFound) {
		return nil
	}
	return err
}

// attachedTo names the running VM of the resource group that boots from the image, if any.
func (c *Compute) attachedTo(rg, img string) (string, error) {
	files, err := filepath.Glob(c.path(rg, "vms", "*", "vm.json"))
	if err != nil {
		return "", err
	}
	for _, file := range files {
		var vm vmFile
		if readJSON(file, &vm) == nil && c.Launcher.Running(vm.PID) {
			for _, d := range vm.Spec.Disks {
				if d == img {
					return vm.Spec.Name, nil
				}
			}
		}
	}
	return "", nil
}

// copyNonZero hands write every MaxPageWrite chunk of r that holds a byte other than zero (a sparse
// image's holes stay unwritten, as a disk's never-written pages are).
func copyNonZero(ctx context.Context, r io.ReaderAt, size int64, write func(off int64, data []byte) error) error {
	buf := make([]byte, replication.MaxPageWrite)
	for off := int64(0); off < size; off += int64(len(buf)) {
		if err := ctx.Err(); err != nil {
			return err
		}
		n := min(int64(len(buf)), size-off)
		if _, err := r.ReadAt(buf[:n], off); err != nil && !errors.Is(err, io.EOF) {
			return err
		}
		if !replication.IsZero(buf[:n]) {
			if err := write(off, buf[:n]); err != nil {
				return err
			}
		}
	}
	return nil
}

// MissingActions: the local compute has no identities or role assignments, so the app may do
// everything in a group that exists; a missing group is ErrNotFound, as ARM's permissions API answers.
func (c *Compute) MissingActions(_ context.Context, rg string, _ []string) ([]string, error) {
	if _, err := os.Stat(c.path(rg, "resourceGroup.json")); err != nil {
		return nil, fmt.Errorf("%w: resource group '%s' could not be found (ResourceGroupNotFound)", replication.ErrNotFound, rg)
	}
	return nil, nil
}
