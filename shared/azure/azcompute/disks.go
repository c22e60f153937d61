package azcompute

import (
	"context"
	"errors"
	"fmt"
	"github.com/standby-dr/standby/shared/azure/azarm"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/runtime"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/to"
	"github.com/Azure/azure-sdk-for-go/sdk/resourcemanager/compute/armcompute/v7"
	"github.com/standby-dr/standby/shared/recovery"
	"github.com/standby-dr/standby/shared/replication"
)

// Delete removes the resources (DELETE by id with their type's apiVersion) in waves by recovery.RemovalRank —
// VMs, then NICs, then disks, then availability sets — the deletes of one wave in parallel (they hold
// nothing of each other), each wave awaited before the next starts, all bounded by ctx: a group's 16
// VMs go in the time of one. A resource already gone is fine. Ids outside the resource group are
// refused: a deployment's resources are all in its group, so an id elsewhere is a mistake that must not
// delete anything.
func (c *Compute) Delete(ctx context.Context, rg string, ids []string) error {
	var targets []deletion
	for _, id := range ids {
		r, err := parseID(id)
		if err != nil {
			return err
		}
		if r.Type == "" || !strings.EqualFold(r.ResourceGroup, rg) || !strings.EqualFold(r.Subscription, c.SubscriptionID) {
			return fmt.Errorf("%w: %s is not a resource of resource group %s in subscription %s", replication.ErrInvalid, id, rg, c.SubscriptionID)
		}
		api, err := apiVersionOf(r.Type)
		if err != nil {
			return err
		}
		targets = append(targets, deletion{id, r, api})
	}
	sort.SliceStable(targets, func(a, b int) bool { return recovery.RemovalRank(targets[a].id) < recovery.RemovalRank(targets[b].id) })
	for start := 0; start < len(targets); {
		end := start + 1
		for end < len(targets) && recovery.RemovalRank(targets[end].id) == recovery.RemovalRank(targets[start].id) {
			end++
		}
		if err := c.deleteWave(ctx, rg, targets[start:end]); err != nil {
			return err
		}
		start = end
	}
	return nil
}

// deletion is one resource to delete: its id, parsed, and its type's apiVersion.
type deletion struct {
	id  string
	r   resourceID
	api string
}

// deleteWave deletes the resources in parallel and waits for all; the first error (a resource gone
// is none) is returned once every delete has ended.
func (c *Compute) deleteWave(ctx context.Context, rg string, wave []deletion) error {
	errs := make([]error, len(wave))
	var wg sync.WaitGroup
	for i, t := range wave {
		wg.Add(1)
		go func() {
			defer wg.Done()
			what := "deleting " + t.r.Type + " " + t.r.Name
			poller, err := c.resources.BeginDeleteByID(ctx, t.id, t.api, nil)
			if err == nil {
				_, err = poller.PollUntilDone(ctx, &runtime.PollUntilDoneOptions{Frequency: c.poll()})
			}
			if err = azarm.Translate(err, what); errors.Is(err, replication.ErrNotFound) {
				return
			}
			if err != nil {
				errs[i] = err
				return
			}
			c.Log.Info("resource deleted", "resourceGroup", rg, "type", t.r.Type, "name", t.r.Name)
		}()
	}
	wg.Wait()
	return errors.Join(errs...)
}

// diskOf checks that id names a managed disk of this subscription (the disks client is bound to it).
func (c *Compute) diskOf(id string) (resourceID, error) {
	r, err := parseID(id)
	if err == nil && (!strings.EqualFold(r.Type, "Microsoft.Compute/disks") || !strings.EqualFold(r.Subscription, c.SubscriptionID)) {
		err = fmt.Errorf("%w: %q is not a managed disk of subscription %s", replication.ErrInvalid, id, c.SubscriptionID)
	}
	return r, err
}

// ExportDisk grants read access (POST …/disks/{name}/beginGetAccess, Read, VHD, for valid) and waits
// for the SAS URL. The URL is the caller's: it is never logged. A disk attached to a running VM is
// refused by the Compute provider with 409 ("Access not permitted because disk … is currently attached
// to running VM …"): ErrConflict.
func (c *Compute) ExportDisk(ctx context.Context, diskID string, valid time.Duration) (string, error) {
	r, err := c.diskOf(diskID)
	if err != nil {
		return "", err
	}
	secs := int64(valid / time.Second)
	if secs < 1 || secs > 1<<31-1 {
		return "", fmt.Errorf("%w: export of %s for %s: between a second and 68 years", replication.ErrInvalid, r.Name, valid)
	}
	poller, err := c.disks.BeginGrantAccess(ctx, r.ResourceGroup, r.Name, armcompute.GrantAccessData{
		Access: to.Ptr(armcompute.AccessLevelRead), DurationInSeconds: to.Ptr(int32(secs)), FileFormat: to.Ptr(armcompute.FileFormatVHD)}, nil)
	var res armcompute.DisksClientGrantAccessResponse
	if err == nil {
		res, err = poller.PollUntilDone(ctx, &runtime.PollUntilDoneOptions{Frequency: c.poll()})
	}
	if err != nil {
		return "", exportError(err, "granting access to disk "+r.Name)
	}
	if res.AccessSAS == nil || *res.AccessSAS == "" {
		return "", fmt.Errorf("granting access to disk %s: the Compute provider returned no address", r.Name)
	}
	c.Log.Info("disk export granted", "resourceGroup", r.ResourceGroup, "disk", r.Name, "valid", valid)
	return *res.AccessSAS, nil
}

// exportError is translate, with a disk in use reported as ErrConflict even when the refusal arrives
// as the operation's Failed status rather than as a 409.
func exportError(err error, what string) error {
	var re *azcore.ResponseError
	if errors.As(err, &re) && re.StatusCode < 300 {
		text := replication.Redact(azarm.ResponseText(re))
		if strings.Contains(strings.ToLower(text), "attached") {
			return fmt.Errorf("%s: %s: %w", what, text, replication.ErrConflict)
		}
	}
	return azarm.Translate(err, what)
}

// EndExport revokes the access (POST …/disks/{name}/endGetAccess); a disk that is gone has nothing to
// revoke.
func (c *Compute) EndExport(ctx context.Context, diskID string) error {
	r, err := c.diskOf(diskID)
	if err != nil {
		return err
	}
	poller, err := c.disks.BeginRevokeAccess(ctx, r.ResourceGroup, r.Name, nil)
	if err == nil {
		_, err = poller.PollUntilDone(ctx, &runtime.PollUntilDoneOptions{Frequency: c.poll()})
	}
	if err = azarm.Translate(err, "revoking access to disk "+r.Name); errors.Is(err, replication.ErrNotFound) {
		return nil
	}
	if err == nil {
		c.Log.Info("disk export revoked", "resourceGroup", r.ResourceGroup, "disk", r.Name)
	}
	return err
}
