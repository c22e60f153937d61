// Package computetest is the contract suite of the Compute port's resource housekeeping
// (recovery.Compute: resource groups, existence, deletion, permissions), run over each implementation:
// the Azure adapter (shared/azure/azcompute) against the fake ARM's stateful groups and disks, and the
// local compute (shared/standin/localcompute). Deployments and VMs are judged elsewhere (the template
// tests, the bring-up tests with QEMU).
package computetest

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/standby-dr/standby/shared/recovery"
	"github.com/standby-dr/standby/shared/replication"
)

// Fixture is one implementation: the port, a managed disk made in a resource group that exists (its
// id), and the id of a resource group.
type Fixture struct {
	Compute recovery.Compute
	NewDisk func(t *testing.T, rg, name string) string
	GroupID func(rg string) string
}

// Run checks the contract.
func Run(t *testing.T, open func(t *testing.T) Fixture) {
	ctx := context.Background()
	t.Run("EnsureResourceGroup", func(t *testing.T) {
		f := open(t)
		id, err := f.Compute.EnsureResourceGroup(ctx, "standby-asr")
		if err != nil || id != f.GroupID("standby-asr") {
			t.Fatalf("made: %q, %v; want %q", id, err, f.GroupID("standby-asr"))
		}
		if again, err := f.Compute.EnsureResourceGroup(ctx, "standby-asr"); err != nil || again != id {
			t.Fatalf("again: %q, %v", again, err)
		}
		if found, err := f.Compute.Exists(ctx, id); err != nil || !found {
			t.Errorf("the group does not exist after it was made: %v, %v", found, err)
		}
		if _, err := f.Compute.EnsureResourceGroup(ctx, "bad name."); !errors.Is(err, replication.ErrInvalid) {
			t.Errorf("a bad name: %v, want ErrInvalid", err)
		}
		if found, err := f.Compute.Exists(ctx, f.GroupID("never-made")); err != nil || found {
			t.Errorf("a group never made: %v, %v", found, err)
		}
	})
	t.Run("ExistsAndDelete", func(t *testing.T) {
		f := open(t)
		disk := f.NewDisk(t, "rg-a", "db-os")
		other := f.NewDisk(t, "rg-b", "db-os") // the same name in another group
		if found, err := f.Compute.Exists(ctx, disk); err != nil || !found {
			t.Fatalf("the disk: %v, %v", found, err)
		}
		if _, err := f.Compute.Exists(ctx, "not-an-id"); !errors.Is(err, replication.ErrInvalid) {
			t.Errorf("not an id: %v, want ErrInvalid", err)
		}
		// An id of another group is refused before anything is deleted: a deployment's resources are all
		// in its group, so an id elsewhere is a mistake that must delete nothing.
		if err := f.Compute.Delete(ctx, "rg-a", []string{other}); !errors.Is(err, replication.ErrInvalid) {
			t.Errorf("deleting another group's resource: %v, want ErrInvalid", err)
		}
		for _, id := range []string{disk, other} {
			if found, _ := f.Compute.Exists(ctx, id); !found {
				t.Fatalf("%s is gone after a refused delete", id)
			}
		}
		for i := 0; i < 2; i++ { // a resource already gone is fine
			if err := f.Compute.Delete(ctx, "rg-a", []string{disk}); err != nil {
				t.Fatalf("delete %d: %v", i+1, err)
			}
		}
		if found, err := f.Compute.Exists(ctx, disk); err != nil || found {
			t.Errorf("the deleted disk: %v, %v", found, err)
		}
		if found, _ := f.Compute.Exists(ctx, other); !found {
			t.Error("the other group's disk of the same name went too")
		}
	})
	t.Run("RunCommandRefusals", func(t *testing.T) { runCommandRefusals(t, open(t)) })
	t.Run("MissingActions", func(t *testing.T) {
		f := open(t)
		if _, err := f.Compute.MissingActions(ctx, "never-made", []string{"Microsoft.Compute/disks/write"}); !errors.Is(err, replication.ErrNotFound) {
			t.Errorf("a group that does not exist: %v, want ErrNotFound", err)
		}
		f.NewDisk(t, "rg-a", "x")
		if missing, err := f.Compute.MissingActions(ctx, "rg-a", []string{"Microsoft.Compute/disks/write"}); err != nil || len(missing) != 0 {
			t.Errorf("in a group the app owns: missing %v, %v", missing, err)
		}
	})
}

// runCommandRefusals: a VM that does not exist is ErrNotFound; a bad name or command ErrInvalid.
func runCommandRefusals(t *testing.T, f Fixture) {
	ctx := context.Background()
	f.NewDisk(t, "rg-a", "db-os") // the group exists; the VM does not
	if _, err := f.Compute.RunCommand(ctx, "rg-a", "db", recovery.Command{Script: "true"}); !errors.Is(err, replication.ErrNotFound) {
		t.Errorf("a VM that does not exist: %v, want ErrNotFound", err)
	}
	for _, c := range []struct {
		rg, vm string
		cmd    recovery.Command
	}{
		{"rg-a", "../db", recovery.Command{Script: "true"}},
		{"rg-a", "db-", recovery.Command{Script: "true"}},
		{"rg/a", "db", recovery.Command{Script: "true"}},
		{"rg-a", "db", recovery.Command{Script: " \n"}},
		{"rg-a", "db", recovery.Command{Script: strings.Repeat("x", recovery.MaxScriptBytes+1)}},
		{"rg-a", "db", recovery.Command{Script: "true", Timeout: recovery.MaxCommandTimeout + time.Second}},
	} {
		if _, err := f.Compute.RunCommand(ctx, c.rg, c.vm, c.cmd); !errors.Is(err, replication.ErrInvalid) {
			t.Errorf("RunCommand(%q, %q, %.20q): %v, want ErrInvalid", c.rg, c.vm, c.cmd.Script, err)
		}
	}
}
