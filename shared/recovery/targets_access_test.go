package recovery

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/standby-dr/standby/shared/replication"
)

// accessCompute answers the permissions question and records whether anything was made.
type accessCompute struct {
	Compute // unused methods panic
	missing []string
	err     error
	made    bool
}

func (c *accessCompute) MissingActions(context.Context, string, []string) ([]string, error) {
	return c.missing, c.err
}

func (c *accessCompute) EnsureResourceGroup(_ context.Context, name string) (string, error) {
	c.made = true
	return "/subscriptions/s/resourceGroups/" + name, nil
}

// A recovery resource group the app may not deploy to is refused as a bad request naming the group,
// the actions and the role, before anything is made; a group that does not exist yet is left to
// EnsureResourceGroup.
func TestProvisionRefusesAGroupTheAppCannotWrite(t *testing.T) {
	spec := replication.GroupSpec{Target: replication.TargetSpec{ResourceGroup: "someone-elses"}}
	denied := &accessCompute{missing: []string{"Microsoft.Compute/virtualMachines/write"}}
	_, err := TargetSite{Compute: denied}.Provision(context.Background(), "shop", spec)
	if !errors.Is(err, replication.ErrInvalid) || denied.made {
		t.Fatalf("refusal: %v (made %v)", err, denied.made)
	}
	for _, want := range []string{"target.resourceGroup", "someone-elses", "Microsoft.Compute/virtualMachines/write", "Contributor", "StandbyRecoveryResourceGroup"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("the refusal does not name %q: %v", want, err)
		}
	}
	missing := &accessCompute{err: replication.ErrNotFound}
	if _, err := (TargetSite{Compute: missing}).Provision(context.Background(), "shop", spec); err != nil || !missing.made {
		t.Errorf("a group not there yet: %v (made %v)", err, missing.made)
	}
}
