package replication

import (
	"context"
	"errors"
	"fmt"
)

// TargetResources are what a group fails over into, made on enable as Site Recovery makes them: the
// recovery resource group, the virtual networks and subnets of the network mapping (the isolated test
// subnet included) and the availability sets. They are recorded on the group and shown by the API.
type TargetResources struct {
	ResourceGroup   string `json:"resourceGroup"`   // its name
	ResourceGroupID string `json:"resourceGroupId"` // its id
	// Deployment is the ARM deployment that made what was missing ("" when everything existed).
	Deployment string `json:"deployment,omitempty"`
	State      string `json:"state"` // Running, Succeeded or Failed
	Error      string `json:"error,omitempty"`
	// Subnets maps each mapping's target and test subnet, as the spec names it, to its resource id.
	Subnets map[string]string `json:"subnets,omitempty"`
	// AvailabilitySets are the ids of the sets the VMs are placed in.
	AvailabilitySets []string `json:"availabilitySets,omitempty"`
	// Created lists the ids the deployment made (the rest existed and were used as they are).
	Created []string `json:"created,omitempty"`
}

// Target resource states (an ARM deployment's provisioning states).
const (
	TargetsRunning   = "Running"
	TargetsSucceeded = "Succeeded"
	TargetsFailed    = "Failed"
)

// TargetProvisioner makes a group's target resources (shared/recovery's TargetSite, on the Compute
// port).
//
// Contract: Provision is idempotent — what exists is used, what is missing is deployed — and returns at
// once with the deployment Running when it takes time; a spec the target cannot take (a subnet to create
// without its prefix, a subnet id that does not exist) is refused with ErrInvalid naming the field, and
// nothing is deployed. Refresh reads a Running deployment's outcome.
type TargetProvisioner interface {
	Provision(ctx context.Context, group string, spec GroupSpec) (TargetResources, error)
	Refresh(ctx context.Context, res TargetResources) (TargetResources, error)
}

// provisionTargets makes (or finds) the group's target resources; without a provisioner (no compute
// configured) there is nothing to make.
func (s *Groups) provisionTargets(ctx context.Context, group string, spec GroupSpec) (TargetResources, error) {
	if s.Targets == nil {
		return TargetResources{}, nil
	}
	res, err := s.Targets.Provision(ctx, group, spec)
	if errors.Is(err, ErrInvalid) {
		return res, err
	}
	if err != nil {
		return res, fmt.Errorf("making the target resources: %w", err)
	}
	s.Log.Info("target resources", "group", group, "resourceGroup", res.ResourceGroup, "state", res.State, "created", len(res.Created))
	return res, nil
}

// recordTargets keeps the target resources on the group's record.
func (s *Deps) recordTargets(ctx context.Context, group string, res TargetResources) (GroupRecord, error) {
	return UpdateGroup(ctx, s.State, group, StateRow, func(r *GroupRecord) error {
		r.Resources = res
		return nil
	})
}

// refreshTargets is the timer's part: a deployment still running is read again and its outcome kept.
func (s *Upkeep) refreshTargets(ctx context.Context, g *Group) ([]string, error) {
	if s.Targets == nil || g.Record.Resources.State != TargetsRunning {
		return nil, nil
	}
	res, err := s.Targets.Refresh(ctx, g.Record.Resources)
	if err != nil || res.State == TargetsRunning {
		return nil, err
	}
	// Kept only over the deployment it refreshed: an enable may have recorded a newer one since.
	running, kept := g.Record.Resources.Deployment, false
	_, err = UpdateGroup(ctx, s.State, g.Record.Group(), StateRow, func(r *GroupRecord) error {
		if r.Resources.State != TargetsRunning || r.Resources.Deployment != running {
			return ErrUnchanged
		}
		r.Resources, kept = res, true
		return nil
	})
	if err != nil || !kept {
		return nil, err
	}
	line := fmt.Sprintf("%s: target resources %s", g.Record.Group(), res.State)
	if res.Error != "" {
		line += ": " + res.Error
	}
	return []string{line}, nil
}
