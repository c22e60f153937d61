package sourceside

import (
	"fmt"
	"github.com/standby-dr/standby/shared/azure/azconn"
	"log/slog"
	"path/filepath"
	"strings"

	"github.com/standby-dr/standby/shared/azure/azsnapshots"
	"github.com/standby-dr/standby/shared/replication"
)

// OpenDiskSnapshots is the source region's snapshot service the setting names:
//   - "SubscriptionId=<guid>" selects Azure Resource Manager with the managed identity of the machine
//     the agent runs on (a user-assigned one when AZURE_CLIENT_ID is set); it needs Disk Snapshot
//     Contributor on the disks' resource groups (snapshots, beginGetAccess) and Reader on the disks;
//   - "UseLocalCompute=true;Dir=…" selects the local stand-in, whose managed disks are page blobs of the
//     source account (StandbySourceStorage).
func OpenDiskSnapshots(getenv func(string) string, log *slog.Logger) (replication.DiskSnapshots, error) {
	value := strings.TrimSpace(getenv(SettingSourceCompute))
	if value == "" {
		return nil, fmt.Errorf("managed: disks are tracked through the source region's compute: set %s", SettingSourceCompute)
	}
	opts, err := azconn.Options(SettingSourceCompute, value)
	if err != nil {
		return nil, err
	}
	if strings.HasPrefix(value, azconn.ComputePrefix) {
		local, err := standInsFor(SettingSourceCompute, "the local compute")
		if err != nil {
			return nil, err
		}
		if unknown := azconn.UnknownKeys(opts, "UseLocalCompute", "Dir"); unknown != "" || opts["Dir"] == "" {
			return nil, fmt.Errorf("%s: the local compute takes Dir= (required) only", SettingSourceCompute)
		}
		dir, err := filepath.Abs(opts["Dir"])
		if err != nil {
			return nil, err
		}
		pages, err := SourcePages(getenv)
		if err != nil {
			return nil, err
		}
		return local.Snapshots(dir, pages, log.With("component", "localcompute")), nil
	}
	if unknown := azconn.UnknownKeys(opts, "SubscriptionId"); unknown != "" {
		return nil, fmt.Errorf("%s: %s: the Azure compute takes SubscriptionId= only", SettingSourceCompute, unknown)
	}
	cred, err := ManagedIdentity(getenv)
	if err != nil {
		return nil, fmt.Errorf("%s: managed identity: %w", SettingSourceCompute, err)
	}
	s, err := azsnapshots.NewSnapshots(opts["SubscriptionId"], cred, nil)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", SettingSourceCompute, err)
	}
	s.Log = log.With("component", "azsnapshots")
	return s, nil
}
