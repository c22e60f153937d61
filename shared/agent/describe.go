package agent

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"time"

	"github.com/standby-dr/standby/shared/replication"
)

// Before the agent enables a group (-spec), it fills what the spec leaves out of each VM's OS disk —
// osType, hyperVGeneration, securityType — from what it sees of the source, so that the failed-over VM
// boots as the source did (a Gen2 disk brought up as Gen1 does not boot). What nothing says takes the
// domain's defaults, and the group's view names them (DiskSpec.Defaulted).
//   - A managed: OS disk: the Compute provider's DiskProperties (DiskSnapshots.DescribeDisk).
//   - The VM the agent runs on (the one VM whose disks it reads in place: nbd:, file:): the OS it runs;
//     UEFI firmware (the kernel's /sys/firmware/efi) means Hyper-V generation 2; on Azure, the instance
//     metadata service's securityProfile says whether the VM is Trusted Launch (secure boot and vTPM).

// Machine is where the agent looks at the VM it runs on.
type Machine struct {
	// Root is the file system root ("" for /): /sys/firmware/efi and /sys/class/dmi/id are under it.
	Root string
	// IMDS is the instance metadata service's address: "" asks it only on Azure (the DMI chassis asset
	// tag Azure sets, as cloud-init tells Azure), "off" never, a URL always (tests).
	IMDS string
	// GOOS is the agent's OS (runtime.GOOS when "").
	GOOS string
}

// azureAssetTag is the chassis asset tag of every Azure VM (cloud-init's DataSourceAzure checks it).
const azureAssetTag = "7783-7084-3265-9085-8269-3286-77"

const defaultIMDS = "http://169.254.169.254"

// describe is what the agent can tell of the VM it runs on (fields it cannot tell stay ""); an error
// says why the security type is not known (the instance metadata service failed), with the rest filled.
func (m Machine) describe(ctx context.Context) (replication.DiskInfo, error) {
	var info replication.DiskInfo
	goos := m.GOOS
	if goos == "" {
		goos = runtime.GOOS
	}
	switch goos {
	case "linux":
		info.OSType, info.HyperVGeneration = "Linux", "V1"
		if _, err := os.Stat(filepath.Join(m.Root, "/sys/firmware/efi")); err == nil {
			info.HyperVGeneration = "V2"
		}
	case "windows":
		info.OSType = "Windows" // its firmware is not read here: the generation stays the spec's or the default
	}
	url := m.imdsURL()
	if url == "" {
		return info, nil
	}
	security, err := imdsSecurityType(ctx, url)
	if err != nil {
		return info, fmt.Errorf("instance metadata: %w", err)
	}
	info.SecurityType = security
	return info, nil
}

// imdsURL is the instance metadata service to ask ("" none): the one given, else Azure's own on an
// Azure VM only — elsewhere its address belongs to nobody the agent may talk to.
func (m Machine) imdsURL() string {
	switch m.IMDS {
	case "off":
		return ""
	case "":
		tag, _ := os.ReadFile(filepath.Join(m.Root, "/sys/class/dmi/id/chassis_asset_tag"))
		if strings.TrimSpace(string(tag)) == azureAssetTag {
			return defaultIMDS
		}
		return ""
	}
	return m.IMDS
}

// imdsSecurityType asks the instance metadata service (GET /metadata/instance/compute, Metadata: true;
// learn.microsoft.com/azure/virtual-machines/instance-metadata-service) for the VM's securityProfile:
// secure boot and a virtual TPM both on is Trusted Launch.
func imdsSecurityType(ctx context.Context, base string) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, strings.TrimSuffix(base, "/")+"/metadata/instance/compute?api-version=2021-02-01", nil)
	if err != nil {
		return "", err
	}
	req.Header.Set("Metadata", "true")
	// The service is on the host: never through a proxy (the service's own advice).
	client := &http.Client{Transport: &http.Transport{Proxy: nil}}
	resp, err := client.Do(req)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("HTTP %d", resp.StatusCode)
	}
	var compute struct {
		SecurityProfile struct {
			SecureBootEnabled string `json:"secureBootEnabled"`
			VirtualTpmEnabled string `json:"virtualTpmEnabled"`
		} `json:"securityProfile"`
	}
	if err := json.NewDecoder(io.LimitReader(resp.Body, 1<<20)).Decode(&compute); err != nil {
		return "", fmt.Errorf("decoding the compute metadata: %v", err)
	}
	if compute.SecurityProfile.SecureBootEnabled == "true" && compute.SecurityProfile.VirtualTpmEnabled == "true" {
		return "TrustedLaunch", nil
	}
	return "Standard", nil
}

// describeOSDisks fills the OS disks' unset boot properties in spec from the sources (above). A value the
// spec gives is kept; one the source contradicts is logged, since the spec's author may know better.
func (r *runner) describeOSDisks(ctx context.Context, spec *replication.GroupSpec) error {
	onVM := map[int]bool{} // the VMs whose disks this agent reads in place
	for i, vm := range spec.VMs {
		for _, d := range vm.Disks {
			if d.Parsed().OnVM() {
				onVM[i] = true
			}
		}
	}
	local := -1 // the VM the agent runs on: the one VM it reads in place, when there is exactly one
	if len(onVM) == 1 {
		for i := range onVM {
			local = i
		}
	}
	var snaps replication.DiskSnapshots
	for i := range spec.VMs {
		vm := &spec.VMs[i]
		j := vm.OSDiskIndex()
		if j < 0 {
			continue
		}
		d := &vm.Disks[j]
		var info replication.DiskInfo
		switch src := d.Parsed(); {
		case src.Kind == replication.SourceManaged && r.cfg.DiskSnapshots != nil:
			if snaps == nil {
				var err error
				if snaps, err = r.cfg.DiskSnapshots(); err != nil {
					return err
				}
			}
			var err error
			if info, err = snaps.DescribeDisk(ctx, src.Ref); err != nil {
				return fmt.Errorf("disk %s/%s: %w", vm.Name, d.Name, err)
			}
		case i == local:
			var err error
			if info, err = r.cfg.Machine.describe(ctx); err != nil {
				r.log.Warn("the VM's security type is not known", "vm", vm.Name, "why", err)
			}
		default:
			continue
		}
		for _, f := range []struct {
			name       string
			spec       *string
			fromSource string
		}{{"osType", &d.OSType, info.OSType}, {"hyperVGeneration", &d.HyperVGeneration, info.HyperVGeneration}, {"securityType", &d.SecurityType, info.SecurityType}} {
			switch {
			case f.fromSource == "":
			case *f.spec == "":
				*f.spec = f.fromSource
			case *f.spec != f.fromSource:
				r.log.Warn("the spec's OS disk property differs from the source's; the spec's is kept", "vm", vm.Name, "disk", d.Name,
					"property", f.name, "spec", *f.spec, "source", f.fromSource)
			}
		}
	}
	return nil
}
