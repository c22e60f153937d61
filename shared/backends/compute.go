package backends

import (
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"regexp"
	"sort"
	"strings"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azidentity"
	"github.com/standby-dr/standby/shared/azure/armtypes"
	"github.com/standby-dr/standby/shared/azure/azcompute"
	"github.com/standby-dr/standby/shared/recovery"
	"github.com/standby-dr/standby/shared/replication"
	"github.com/standby-dr/standby/shared/standin/broker"
	"github.com/standby-dr/standby/shared/standin/localcompute"
	"github.com/standby-dr/standby/shared/standin/qemu"
)

// Compute settings: where failed-over VMs come up, and the target account's resource id (managed disks
// import its VHDs).
const (
	SettingCompute         = "StandbyCompute"
	SettingTargetAccountID = "StandbyTargetStorageAccountId"
	defaultLocalAccountID  = "/subscriptions/local/resourceGroups/local/providers/Microsoft.Storage/storageAccounts/devstoreaccount1"
	// regionSetting is the app's region as the Functions host states it; clientIDSetting names a
	// user-assigned managed identity (the Azure SDKs' own convention).
	regionSetting   = "REGION_NAME"
	clientIDSetting = "AZURE_CLIENT_ID"
)

// OpenCompute is the Compute port the settings name:
//   - "SubscriptionId=<guid>[;Location=<region>]" selects Azure Resource Manager with the app's managed
//     identity (a user-assigned one when AZURE_CLIENT_ID is set); Location defaults to REGION_NAME, which
//     the Functions host sets (as "West Europe" on some plans: spaces dropped, lowercased);
//     StandbyTargetStorageAccountId is then required;
//   - "UseLocalCompute=true;Dir=…;Images=…;Types=…" selects the local stand-in (its state under Dir, the
//     VM boot files of scripts/vm-image.sh under Images, the published type definitions under Types;
//     relative paths are the working directory's); pages reads the VHDs its disks import;
//   - unset, none: failovers end at the machine definitions.
func OpenCompute(getenv func(string) string, pages replication.PageStore, log *slog.Logger) (recovery.Compute, string, error) {
	value := strings.TrimSpace(getenv(SettingCompute))
	accountID := strings.TrimSpace(getenv(SettingTargetAccountID))
	if value == "" {
		return nil, accountID, nil
	}
	opts, err := computeOptions(SettingCompute, value)
	if err != nil {
		return nil, accountID, err
	}
	switch {
	case strings.HasPrefix(value, broker.ComputePrefix):
		return openLocalCompute(opts, pages, accountID, log)
	case opts["SubscriptionId"] != "":
		c, err := openAzureCompute(getenv, opts, accountID, log)
		return c, accountID, err
	}
	return nil, accountID, fmt.Errorf("%s: want SubscriptionId=<guid>[;Location=<region>] (Azure) or %s;Dir=…;Images=…;Types=… (the local compute)", SettingCompute, broker.ComputePrefix)
}

// computeOptions reads "Key=value;Key=value", refusing a part without '=' or a key given twice.
func computeOptions(setting, value string) (map[string]string, error) {
	opts := map[string]string{}
	for _, part := range strings.Split(value, ";") {
		if part = strings.TrimSpace(part); part == "" {
			continue
		}
		k, v, ok := strings.Cut(part, "=")
		k, v = strings.TrimSpace(k), strings.TrimSpace(v)
		if !ok || k == "" {
			return nil, fmt.Errorf("%s: %q is not Key=value", setting, part)
		}
		if _, dup := opts[k]; dup {
			return nil, fmt.Errorf("%s: %s= is given twice", setting, k)
		}
		opts[k] = v
	}
	return opts, nil
}

// storageAccountID is a storage account's resource id: managed disks import from it by this id.
var storageAccountID = regexp.MustCompile(`(?i)^/subscriptions/[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}/resourceGroups/[-\w._()]{1,90}/providers/Microsoft\.Storage/storageAccounts/[a-z0-9]{3,24}$`)

func openAzureCompute(getenv func(string) string, opts map[string]string, accountID string, log *slog.Logger) (recovery.Compute, error) {
	if unknown := unknownKeys(opts, "SubscriptionId", "Location"); unknown != "" {
		return nil, fmt.Errorf("%s: %s: the Azure compute takes SubscriptionId= and Location= only", SettingCompute, unknown)
	}
	sub, loc := opts["SubscriptionId"], opts["Location"]
	if err := azcompute.CheckSubscriptionID(sub); err != nil {
		return nil, fmt.Errorf("%s: SubscriptionId=: %w", SettingCompute, err)
	}
	from := "Location="
	if loc == "" {
		// The host's REGION_NAME may be the display name; the short name is it without spaces, lowercased
		// (the conversion ARM and the CLI apply).
		loc, from = strings.ToLower(strings.Join(strings.Fields(getenv(regionSetting)), "")), regionSetting+" (Location= unset)"
		if loc == "" {
			return nil, fmt.Errorf("%s: Location= is required when %s is not set (outside the Functions host)", SettingCompute, regionSetting)
		}
	}
	if err := azcompute.CheckLocation(loc); err != nil {
		return nil, fmt.Errorf("%s: %s: %w", SettingCompute, from, err)
	}
	if !storageAccountID.MatchString(accountID) {
		return nil, fmt.Errorf("%s: the Azure compute imports managed disks from the target account: set %s to its resource id (/subscriptions/<guid>/resourceGroups/<group>/providers/Microsoft.Storage/storageAccounts/<name>), not %q",
			SettingCompute, SettingTargetAccountID, accountID)
	}
	cred, err := managedIdentity(getenv)
	if err != nil {
		return nil, fmt.Errorf("%s: managed identity: %w", SettingCompute, err)
	}
	c, err := azcompute.New(sub, loc, cred, nil)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", SettingCompute, err)
	}
	c.Log = log.With("component", "azcompute")
	log.Info("compute: Azure Resource Manager", "subscription", sub, "location", loc, "userAssignedIdentity", getenv(clientIDSetting) != "")
	return c, nil
}

// managedIdentity is the app's own identity: system-assigned, or the user-assigned one AZURE_CLIENT_ID
// names. Deliberately not DefaultAzureCredential: a failover must act as the app, never as whatever
// developer or environment credential happens to be around.
func managedIdentity(getenv func(string) string) (azcore.TokenCredential, error) {
	var opts azidentity.ManagedIdentityCredentialOptions
	if id := strings.TrimSpace(getenv(clientIDSetting)); id != "" {
		opts.ID = azidentity.ClientID(id)
	}
	return azidentity.NewManagedIdentityCredential(&opts)
}

func openLocalCompute(opts map[string]string, pages replication.PageStore, accountID string, log *slog.Logger) (recovery.Compute, string, error) {
	if unknown := unknownKeys(opts, "UseLocalCompute", "Dir", "Images", "Types"); unknown != "" {
		return nil, accountID, fmt.Errorf("%s: %s: the local compute takes Dir=, Images= and Types=", SettingCompute, unknown)
	}
	for _, k := range []string{"Dir", "Images", "Types"} {
		if opts[k] == "" {
			return nil, accountID, fmt.Errorf("%s: %s= is required", SettingCompute, k)
		}
		if abs, err := filepath.Abs(opts[k]); err == nil {
			opts[k] = abs
		}
	}
	if pages == nil {
		return nil, accountID, errors.New(SettingCompute + ": the local compute imports disks from the target storage: set StandbyTargetStorage")
	}
	images, err := qemu.LoadImages(opts["Images"])
	if err != nil {
		return nil, accountID, fmt.Errorf("%s: %w", SettingCompute, err)
	}
	types, err := armtypes.Load(opts["Types"])
	if err != nil {
		return nil, accountID, fmt.Errorf("%s: Types=: %w", SettingCompute, err)
	}
	if accountID == "" {
		accountID = defaultLocalAccountID
	}
	return &localcompute.Compute{Dir: opts["Dir"], Types: types, Pages: pages, Launcher: localcompute.QEMU{Images: images},
		Log: log.With("component", "localcompute")}, accountID, nil
}

// Targets is the target-resource provisioner on the configured compute (nil without one).
func (b *Backends) Targets() replication.TargetProvisioner {
	if b.Compute == nil {
		return nil
	}
	return recovery.TargetSite{Compute: b.Compute}
}

// Exporter reads managed disks through the configured compute (nil without one).
func (b *Backends) Exporter() replication.DiskExporter {
	if b.Compute == nil {
		return nil
	}
	return b.Compute
}

// unknownKeys names the keys outside allowed ("" when there are none), sorted.
func unknownKeys(opts map[string]string, allowed ...string) string {
	var extra []string
	for k := range opts {
		known := false
		for _, a := range allowed {
			known = known || k == a
		}
		if !known {
			extra = append(extra, k+"=")
		}
	}
	sort.Strings(extra)
	if len(extra) == 0 {
		return ""
	}
	return "unknown " + strings.Join(extra, ", ")
}
