// Package localcompute plays Azure Resource Manager and the Compute and Network resource providers on one
// machine, as Azurite plays Storage: it takes the deployments Standby's failover jobs make, refuses what
// the providers would refuse (the published type definitions, then the providers' rules: validate.go),
// keeps every deployment it received as a file, makes each managed disk a local image of the VHD it
// imports, and boots each VM with QEMU from its disks' images. A VM is up when its guest says so on its
// serial console. State lives in files under Dir, and the VMs run detached, so any process — a handler
// restarted mid-job included — sees the same resource groups.
package localcompute

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/standby-dr/standby/shared/azure/armtypes"
	"github.com/standby-dr/standby/shared/recovery"
	"github.com/standby-dr/standby/shared/replication"
	"github.com/standby-dr/standby/shared/standin/qemu"
)

// Launcher starts and watches the VMs' processes (shared/standin/qemu in the product; tests may count).
type Launcher interface {
	// Start boots a VM from disk images (the OS disk first) and returns its process id; the VM outlives
	// the calling process.
	Start(ctx context.Context, vm MachineSpec) (pid int, err error)
	// Running reports whether the process is still the VM that was started.
	Running(pid int) bool
	// Stop ends the VM.
	Stop(pid int) error
	// Healthy reports whether the guest said it is up in its serial log: its health line when it did,
	// the log's tail otherwise.
	Healthy(serialLog string) (bool, string)
}

// MachineSpec is what a VM boots from.
type MachineSpec struct {
	Name      string
	Disks     []string // raw images, the OS disk first
	Isolated  bool     // no network (a test failover's VM)
	SerialLog string
	// RunSocket is the guest's run channel (qemu.Spec.RunSocket): RunCommand's way in.
	RunSocket string
	// Segment, IP and MAC put an isolated VM on its subnet's own segment (network.go's testSegment):
	// the drill's VMs reach each other there, and nothing else.
	Segment, IP, MAC string
}

// Compute is the local stand-in for the Compute port.
type Compute struct {
	Dir   string
	Types *armtypes.Catalog // the published type definitions (nil: only the providers' rules are checked)
	// Pages reads the VHDs managed disks import (sourceUri: an address of this page store).
	Pages    replication.PageStore
	Launcher Launcher
	Log      *slog.Logger

	mu sync.Mutex // one deployment at a time within this process; files make it visible to others
}

var _ recovery.Compute = (*Compute)(nil)

// deploymentFile is a deployment as the local compute keeps it.
type deploymentFile struct {
	Request   recovery.DeploymentRequest `json:"request"`
	State     string                     `json:"state"`
	Error     string                     `json:"error,omitempty"`
	Resources []string                   `json:"resources"`
}

func (c *Compute) path(rg string, parts ...string) string {
	return filepath.Join(append([]string{c.Dir, rg}, parts...)...)
}

// Deploy validates the deployment and provisions it: disks imported, NICs recorded, VMs started.
func (c *Compute) Deploy(ctx context.Context, rg, name string, req recovery.DeploymentRequest) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if err := c.resourceGroupExists(rg); err != nil {
		return err
	}
	rs, err := evaluate(rg, req)
	if err == nil {
		err = c.check(ctx, rs)
	}
	if err != nil {
		return err // refused: nothing kept, as ARM keeps no deployment that fails validation
	}
	file := c.path(rg, "deployments", name+".json")
	var existing deploymentFile
	if readJSON(file, &existing) == nil && existing.State == recovery.DeploymentSucceeded {
		return nil // deployed before: the same name deploys once
	}
	d := deploymentFile{Request: req, State: recovery.DeploymentRunning}
	if err := writeJSON(file, d); err != nil {
		return err
	}
	for _, r := range rs {
		if err := c.provision(ctx, rg, r); err != nil {
			d.State, d.Error = recovery.DeploymentFailed, fmt.Sprintf("%s '%s': %v", r.Type, r.Name, err)
			c.Log.Warn("deployment failed", "resourceGroup", rg, "deployment", name, "err", err)
			return writeJSON(file, d)
		}
		d.Resources = append(d.Resources, r.ID)
	}
	d.State = recovery.DeploymentSucceeded
	c.Log.Info("deployment succeeded", "resourceGroup", rg, "deployment", name, "resources", len(d.Resources))
	return writeJSON(file, d)
}

// Deployment is a deployment's state.
func (c *Compute) Deployment(_ context.Context, rg, name string) (recovery.DeploymentStatus, error) {
	var d deploymentFile
	if err := readJSON(c.path(rg, "deployments", name+".json"), &d); err != nil {
		return recovery.DeploymentStatus{}, err
	}
	return recovery.DeploymentStatus{State: d.State, Error: d.Error, Resources: d.Resources}, nil
}

// vmFile is a VM as the local compute keeps it.
type vmFile struct {
	ID  string `json:"id"`
	PID int    `json:"pid"`
	// Started is when the VM was booted (the order VMs came up in is the order of these).
	Started time.Time   `json:"started"`
	Spec    MachineSpec `json:"spec"`
	Zones   any         `json:"zones,omitempty"`
}

// VM is a VM's state: running while its process runs, healthy once its guest said so.
func (c *Compute) VM(_ context.Context, rg, name string) (recovery.VMStatus, error) {
	var vm vmFile
	if err := readJSON(c.path(rg, "vms", name, "vm.json"), &vm); err != nil {
		return recovery.VMStatus{}, err
	}
	st := recovery.VMStatus{ID: vm.ID, PowerState: "stopped"}
	if c.Launcher.Running(vm.PID) {
		st.PowerState = "running"
	}
	healthy, tail := c.Launcher.Healthy(vm.Spec.SerialLog)
	st.Healthy = healthy && st.PowerState == "running"
	if !st.Healthy {
		st.Detail = "serial console: " + tail
	} else if line := healthLine(tail); line != "" {
		st.Evidence = "serial console: " + line
	}
	return st, nil
}

// healthLine is the guest's last health line in a console tail ("" if none).
func healthLine(tail string) string {
	lines := strings.Split(tail, "\n")
	for i := len(lines) - 1; i >= 0; i-- {
		if _, ok := qemu.ParseHealth(lines[i]); ok {
			return strings.TrimSpace(lines[i])
		}
	}
	return ""
}

// Delete removes resources by id: a VM is stopped and its files go; a disk's image and a NIC's record
// go. Ids already gone are fine.
func (c *Compute) Delete(ctx context.Context, rg string, ids []string) error {
	// As ARM's adapter does: an id outside the group is a mistake that must delete nothing.
	for _, id := range ids {
		if idRG, _, ok := idParts(id); !ok || !strings.EqualFold(idRG, rg) {
			return fmt.Errorf("%w: %s is not a resource of resource group %s", replication.ErrInvalid, id, rg)
		}
	}
	ids = slices.Clone(ids)
	sort.SliceStable(ids, func(a, b int) bool { return recovery.RemovalRank(ids[a]) < recovery.RemovalRank(ids[b]) })
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, id := range ids {
		kind, name := kindAndName(id)
		switch kind {
		case "virtualMachines":
			var vm vmFile
			if readJSON(c.path(rg, "vms", name, "vm.json"), &vm) == nil && c.Launcher.Running(vm.PID) {
				if err := c.Launcher.Stop(vm.PID); err != nil {
					return err
				}
			}
			if vm.Spec.RunSocket != "" {
				os.Remove(vm.Spec.RunSocket)
			}
			if err := os.RemoveAll(c.path(rg, "vms", name)); err != nil {
				return err
			}
		case "disks", "networkInterfaces", "availabilitySets", "virtualNetworks":
			for _, f := range []string{name + ".img", name + ".json"} {
				if err := os.Remove(c.path(rg, kind, f)); err != nil && !errors.Is(err, os.ErrNotExist) {
					return err
				}
			}
			if ref, err := ManagedDiskBlob(id); kind == "disks" && err == nil { // a source-region disk (CreateDisk)
				if err := c.Pages.Delete(ctx, ref); err != nil && !errors.Is(err, replication.ErrNotFound) {
					return err
				}
			}
		}
	}
	return nil
}

// StopAll stops every VM the local compute started under dir (a test's cleanup).
func StopAll(dir string, l Launcher) {
	files, _ := filepath.Glob(filepath.Join(dir, "*", "vms", "*", "vm.json"))
	sort.Strings(files)
	for _, f := range files {
		var vm vmFile
		if readJSON(f, &vm) == nil && l.Running(vm.PID) {
			l.Stop(vm.PID)
		}
	}
}

func kindAndName(id string) (string, string) {
	parts := strings.Split(id, "/")
	if len(parts) < 2 {
		return "", ""
	}
	return parts[len(parts)-2], parts[len(parts)-1]
}

func readJSON(path string, into any) error {
	data, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("%s: %w", filepath.Base(path), replication.ErrNotFound)
	}
	if err != nil {
		return err
	}
	return json.Unmarshal(data, into)
}

// writeJSON replaces a file whole (write aside, then rename), so a reader never sees half of it.
func writeJSON(path string, v any) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	data, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err
	}
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, data, 0o644); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}
