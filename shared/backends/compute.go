package backends

import (
	"errors"
	"fmt"
	"github.com/standby-dr/standby/shared/azure/azconn"
	"log/slog"
	"path/filepath"
	"regexp"
	"strings"

	"github.com/standby-dr/standby/shared/azure/armtypes"
	"github.com/standby-dr/standby/shared/azure/azarm"
	"github.com/standby-dr/standby/shared/azure/azcompute"
	"github.com/standby-dr/standby/shared/backends/sourceside"
	"github.com/standby-dr/standby/shared/recovery"
	"github.com/standby-dr/standby/shared/replication"
	"github.com/standby-dr/standby/shared/standin/localcompute"
	"github.com/standby-dr/standby/shared/standin/qemu"
)

// Compute settings: where failed-over VMs come up, and the target account's resource id (managed disks
// import its VHDs).
const (
	SettingCompute         = "StandbyCompute"
	SettingTargetAccountID = "StandbyTargetStorageAccountId"
	defaultLocalAccountID  = "/subscriptions/local/resourceGroups/local/providers/Microsoft.Storage/storageAccounts/devstoreaccount1"
	// regionSetting is the app's region as the Functions host states it.
	regionSetting = "REGION_NAME"
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
	opts, err := azconn.Options(SettingCompute, value)
	if err != nil {
		return nil, accountID, err
	}
	switch {
	case strings.HasPrefix(value, azconn.ComputePrefix):
		return openLocalCompute(opts, pages, accountID, log)
	case opts["SubscriptionId"] != "":
		c, err := openAzureCompute(getenv, opts, accountID, log)
		return c, accountID, err
	}
	return nil, accountID, fmt.Errorf("%s: want SubscriptionId=<guid>[;Location=<region>] (Azure) or %s;Dir=…;Images=…;Types=… (the local compute)", SettingCompute, azconn.ComputePrefix)
}

// storageAccountID is a storage account's resource id: managed disks import from it by this id.
var storageAccountID = regexp.MustCompile(`(?i)^/subscriptions/[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}/resourceGroups/[-\w._()]{1,90}/providers/Microsoft\.Storage/storageAccounts/[a-z0-9]{3,24}$`)

func openAzureCompute(getenv func(string) string, opts map[string]string, accountID string, log *slog.Logger) (recovery.Compute, error) {
	if unknown := azconn.UnknownKeys(opts, "SubscriptionId", "Location"); unknown != "" {
		return nil, fmt.Errorf("%s: %s: the Azure compute takes SubscriptionId= and Location= only", SettingCompute, unknown)
	}
	sub, loc := opts["SubscriptionId"], opts["Location"]
	if err := azarm.CheckSubscriptionID(sub); err != nil {
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
	cred, err := sourceside.ManagedIdentity(getenv)
	if err != nil {
		return nil, fmt.Errorf("%s: managed identity: %w", SettingCompute, err)
	}
	c, err := azcompute.New(sub, loc, cred, nil)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", SettingCompute, err)
	}
	c.Log = log.With("component", "azcompute")
	log.Info("compute: Azure Resource Manager", "subscription", sub, "location", loc, "userAssignedIdentity", getenv("AZURE_CLIENT_ID") != "")
	return c, nil
}

func openLocalCompute(opts map[string]string, pages replication.PageStore, accountID string, log *slog.Logger) (recovery.Compute, string, error) {
	if unknown := azconn.UnknownKeys(opts, "UseLocalCompute", "Dir", "Images", "Types"); unknown != "" {
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
