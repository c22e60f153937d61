package backends

import (
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"strings"

	"github.com/standby-dr/standby/shared/armtypes"
	"github.com/standby-dr/standby/shared/failover"
	"github.com/standby-dr/standby/shared/local"
	"github.com/standby-dr/standby/shared/localcompute"
	"github.com/standby-dr/standby/shared/qemu"
	"github.com/standby-dr/standby/shared/replication"
)

// Compute settings: where failed-over VMs come up, and the target account's resource id (managed disks
// import its VHDs).
const (
	SettingCompute         = "StandbyCompute"
	SettingTargetAccountID = "StandbyTargetStorageAccountId"
	defaultLocalAccountID  = "/subscriptions/local/resourceGroups/local/providers/Microsoft.Storage/storageAccounts/devstoreaccount1"
)

// OpenCompute is the Compute port the settings name: "UseLocalCompute=true;Dir=…;Images=…;Types=…"
// selects the local stand-in (its state under Dir, the VM boot files of scripts/vm-image.sh under
// Images, the published type definitions under Types); unset, none (failovers end at the machine
// definitions). Relative paths are the working directory's. pages reads the VHDs disks import.
func OpenCompute(getenv func(string) string, pages replication.PageStore, log *slog.Logger) (failover.Compute, string, error) {
	value := strings.TrimSpace(getenv(SettingCompute))
	accountID := strings.TrimSpace(getenv(SettingTargetAccountID))
	if value == "" {
		return nil, accountID, nil
	}
	if !strings.HasPrefix(value, local.ComputePrefix) {
		return nil, accountID, fmt.Errorf("%s: only the local compute (%s;Dir=…;Images=…;Types=…) is available: Azure Resource Manager is reached by no adapter yet", SettingCompute, local.ComputePrefix)
	}
	opts := map[string]string{}
	for _, part := range strings.Split(value, ";")[1:] {
		k, v, _ := strings.Cut(strings.TrimSpace(part), "=")
		if abs, err := filepath.Abs(v); err == nil && v != "" {
			v = abs
		}
		opts[k] = v
	}
	for _, k := range []string{"Dir", "Images", "Types"} {
		if opts[k] == "" {
			return nil, accountID, fmt.Errorf("%s: %s= is required", SettingCompute, k)
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
	return failover.TargetSite{Compute: b.Compute}
}

// Exporter reads managed disks through the configured compute (nil without one).
func (b *Backends) Exporter() replication.DiskExporter {
	if b.Compute == nil {
		return nil
	}
	return b.Compute
}
