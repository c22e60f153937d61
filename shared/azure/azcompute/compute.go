// Package azcompute is the failover Compute port on Azure Resource Manager: resource groups and
// deployments through armresources, VMs and managed disks through armcompute, generic existence and
// deletion by resource id with the apiVersions Standby's templates are checked against. Errors are
// translated to the domain's sentinels at this boundary (refusal → ErrInvalid, 404 → ErrNotFound, 409 →
// ErrConflict, throttling and 5xx → ErrUnavailable) and never carry a SAS signature or a token.
package azcompute

import (
	"context"
	"errors"
	"fmt"
	"github.com/standby-dr/standby/shared/azure/azarm"
	"io"
	"log/slog"
	"net/http"
	"regexp"
	"strings"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/arm"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/to"
	"github.com/Azure/azure-sdk-for-go/sdk/resourcemanager/authorization/armauthorization/v2"
	"github.com/Azure/azure-sdk-for-go/sdk/resourcemanager/compute/armcompute/v7"
	"github.com/Azure/azure-sdk-for-go/sdk/resourcemanager/resources/armresources"
	"github.com/standby-dr/standby/shared/recovery"
	"github.com/standby-dr/standby/shared/replication"
)

// Compute reaches ARM in one subscription; resource groups it creates go to Location.
type Compute struct {
	SubscriptionID string
	Location       string
	// PollInterval paces long-running operations when ARM sends no Retry-After.
	PollInterval time.Duration
	// HTTP reads the boot diagnostics serial log behind its SAS URL (a plain GET: the URL carries its own
	// authorization, so no ARM token may travel with it).
	HTTP *http.Client
	Log  *slog.Logger

	groups      *armresources.ResourceGroupsClient
	deployments *armresources.DeploymentsClient
	resources   *armresources.Client
	vms         *armcompute.VirtualMachinesClient
	runCommands *armcompute.VirtualMachineRunCommandsClient
	disks       *armcompute.DisksClient
	permissions *armauthorization.PermissionsClient
}

var _ recovery.Compute = (*Compute)(nil)

// New builds the clients; opts may point them at another ARM endpoint (a test server) or cloud.
func New(subscriptionID, location string, cred azcore.TokenCredential, opts *arm.ClientOptions) (*Compute, error) {
	if err := azarm.CheckSubscriptionID(subscriptionID); err != nil {
		return nil, err
	}
	if err := CheckLocation(location); err != nil {
		return nil, err
	}
	c := &Compute{SubscriptionID: subscriptionID, Location: location, PollInterval: 5 * time.Second,
		HTTP: &http.Client{Timeout: 30 * time.Second}, Log: slog.New(slog.NewTextHandler(io.Discard, nil))}
	var err error
	if c.groups, err = armresources.NewResourceGroupsClient(subscriptionID, cred, opts); err != nil {
		return nil, err
	}
	if c.deployments, err = armresources.NewDeploymentsClient(subscriptionID, cred, opts); err != nil {
		return nil, err
	}
	if c.resources, err = armresources.NewClient(subscriptionID, cred, opts); err != nil {
		return nil, err
	}
	if c.vms, err = armcompute.NewVirtualMachinesClient(subscriptionID, cred, opts); err != nil {
		return nil, err
	}
	if c.runCommands, err = armcompute.NewVirtualMachineRunCommandsClient(subscriptionID, cred, opts); err != nil {
		return nil, err
	}
	if c.disks, err = armcompute.NewDisksClient(subscriptionID, cred, opts); err != nil {
		return nil, err
	}
	if c.permissions, err = armauthorization.NewPermissionsClient(subscriptionID, cred, opts); err != nil {
		return nil, err
	}
	return c, nil
}

var (
	guid = regexp.MustCompile(`^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$`)
	// A region's programmatic name (westeurope, eastus2, usgovvirginia): lowercase letters and digits.
	location = regexp.MustCompile(`^[a-z][a-z0-9]{1,39}$`)
)

// CheckLocation refuses anything but a region's programmatic name ("westeurope", not "West Europe").
func CheckLocation(s string) error {
	if !location.MatchString(s) {
		return fmt.Errorf("%w: location %q is not a region name (lowercase letters and digits, e.g. westeurope)", replication.ErrInvalid, s)
	}
	return nil
}

func (c *Compute) poll() time.Duration {
	if c.PollInterval > 0 {
		return c.PollInterval
	}
	return 5 * time.Second
}

// EnsureResourceGroup creates the group in Location only when it is missing: an existing group keeps its
// region, tags and locks untouched (a PUT would overwrite its tags).
func (c *Compute) EnsureResourceGroup(ctx context.Context, name string) (string, error) {
	if !replication.ValidResourceGroupName(name) { // the grammar of Microsoft.Resources/resourceGroups
		return "", fmt.Errorf("%w: resource group name %q: 1-90 letters, digits, '_', '-', '.', '(' or ')', not ending in '.'", replication.ErrInvalid, name)
	}
	id := "/subscriptions/" + c.SubscriptionID + "/resourceGroups/" + name
	found, err := c.groups.CheckExistence(ctx, name, nil)
	if err != nil {
		return "", azarm.Translate(err, "checking resource group "+name)
	}
	if found.Success {
		return id, nil
	}
	created, err := c.groups.CreateOrUpdate(ctx, name, armresources.ResourceGroup{Location: to.Ptr(c.Location)}, nil)
	if err != nil {
		return "", azarm.Translate(err, "creating resource group "+name)
	}
	c.Log.Info("resource group created", "resourceGroup", name, "location", c.Location)
	if created.ID != nil {
		id = *created.ID
	}
	return id, nil
}

// Exists reads the resource by id (GET with its type's apiVersion: every provider serves GET, not every
// one HEAD); a resource group by CheckExistence.
func (c *Compute) Exists(ctx context.Context, id string) (bool, error) {
	r, err := parseID(id)
	if err != nil {
		return false, err
	}
	if r.Type == "" {
		found, err := c.groups.CheckExistence(ctx, r.ResourceGroup, nil)
		if err != nil {
			return false, azarm.Translate(err, "checking resource group "+r.ResourceGroup)
		}
		return found.Success, nil
	}
	api, err := apiVersionOf(r.Type)
	if err != nil {
		return false, err
	}
	_, err = c.resources.GetByID(ctx, id, api, nil)
	if err == nil {
		return true, nil
	}
	if err = azarm.Translate(err, "reading "+r.Type+" "+r.Name); errors.Is(err, replication.ErrNotFound) {
		return false, nil
	}
	return false, err
}

// The apiVersions of the published type definitions (../shared/reference/azure-types) Standby's
// templates are checked against: Compute VMs and availability sets 2025-04-01, disks 2025-01-02,
// Network 2024-05-01.
var apiVersions = map[string]string{
	"microsoft.compute/virtualmachines":  "2025-04-01",
	"microsoft.compute/availabilitysets": "2025-04-01",
	"microsoft.compute/disks":            "2025-01-02",
}

const networkAPI = "2024-05-01"

func apiVersionOf(typ string) (string, error) {
	if v, ok := apiVersions[strings.ToLower(typ)]; ok {
		return v, nil
	}
	if strings.HasPrefix(strings.ToLower(typ), "microsoft.network/") {
		return networkAPI, nil
	}
	return "", fmt.Errorf("%w: resource type %s: no apiVersion known for it (Compute VMs, availability sets and disks, Network)", replication.ErrInvalid, typ)
}

// resourceID is a parsed resource id: its group, full type (Provider/type[/child...]) and last name; a
// resource group's own id has no type.
type resourceID struct {
	Subscription, ResourceGroup, Type, Name string
}

func parseID(id string) (resourceID, error) {
	parts := strings.Split(strings.TrimPrefix(id, "/"), "/")
	bad := fmt.Errorf("%w: %q is not a resource id (/subscriptions/<id>/resourceGroups/<name>[/providers/<namespace>/<type>/<name>...])", replication.ErrInvalid, id)
	if len(parts) < 4 || !strings.EqualFold(parts[0], "subscriptions") || !strings.EqualFold(parts[2], "resourceGroups") || parts[1] == "" || parts[3] == "" {
		return resourceID{}, bad
	}
	r := resourceID{Subscription: parts[1], ResourceGroup: parts[3]}
	if len(parts) == 4 {
		return r, nil
	}
	rest := parts[6:]
	if len(parts) < 8 || !strings.EqualFold(parts[4], "providers") || parts[5] == "" || len(rest)%2 != 0 {
		return resourceID{}, bad
	}
	types := []string{parts[5]}
	for i := 0; i < len(rest); i += 2 {
		if rest[i] == "" || rest[i+1] == "" {
			return resourceID{}, bad
		}
		types = append(types, rest[i])
	}
	r.Type, r.Name = strings.Join(types, "/"), rest[len(rest)-1]
	return r, nil
}

func str(p *string) string {
	if p == nil {
		return ""
	}
	return *p
}
