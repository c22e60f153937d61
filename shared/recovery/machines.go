package recovery

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/standby-dr/standby/shared/replication"
)

// machineDefinitions writes, for each VM, an ARM template attaching its materialized disks next to the
// disks (<vm>.template.json) for automation to deploy, and into the job's result while they fit well
// inside a Table storage property (a 16-VM group of 64-disk VMs would not).
func machineDefinitions(ctx context.Context, r *JobRunner, j *Job, g *replication.Group) (string, time.Duration, error) {
	j.Result = map[string]string{"container": j.Container, "point": j.PointID, "pointTime": j.PointTime.Format(time.RFC3339Nano)}
	if t, ok := j.Work.EffectiveTime(); ok {
		j.Result["effectiveTime"] = t
	}
	disk := func(key string) replication.DiskRef { return replication.DiskIn(j.Container, key) }
	if inPlace(j, g) {
		disk = g.TargetDisk
		j.Result["inPlace"] = "true"
	}
	inline := 0
	for _, vm := range g.Spec.VMs {
		d, err := r.machineDeployment(j, g, vm, disk)
		if err != nil {
			return "", 0, permanentError{err}
		}
		doc, err := json.Marshal(d)
		if err != nil {
			return "", 0, permanentError{err}
		}
		ref := TemplateBlob(j.Container, vm.Name)
		if err := r.Pages.PutBlob(ctx, ref, doc, "application/json"); err != nil {
			return "", 0, err
		}
		j.Result["templateUrl:"+vm.Name] = replication.Redact(r.Pages.URL(ref))
		if inline += len(doc); inline <= maxInlineTemplates {
			j.Result["template:"+vm.Name] = string(doc)
		}
	}
	where := "next to the disks and in the result"
	if inline > maxInlineTemplates {
		where = "next to the disks (too large for the result: templateUrl:<vm> names them)"
	}
	return fmt.Sprintf("%d machine definitions %s", len(g.Spec.VMs), where), 0, nil
}

// maxInlineTemplates bounds the templates a job's result carries (a Table property holds 64 KiB).
const maxInlineTemplates = 16 << 10

// TemplateBlob is where a VM's machine definition is written, next to its materialized disks.
func TemplateBlob(container, vm string) replication.DiskRef {
	return replication.DiskRef{Container: container, Name: vm + ".template.json"}
}

// DeploymentRequest is the body of an ARM deployment: the template and its parameter values.
type DeploymentRequest struct {
	Properties struct {
		Mode       string                    `json:"mode"`
		Template   Template                  `json:"template"`
		Parameters map[string]map[string]any `json:"parameters"`
	} `json:"properties"`
}

// machineDeployment is a VM's deployment for the job: its disks the job's materialized copies, its
// subnet the mapping's target (the isolated test subnet for a drill; "" without a mapping).
func (r *JobRunner) machineDeployment(j *Job, g *replication.Group, vm replication.VMSpec, disk func(string) replication.DiskRef) (DeploymentRequest, error) {
	plan := MachinePlan{VM: vm, StorageAccountID: r.StorageAccountID, Suffix: j.ID()[:8], Isolated: isolated(j.Type),
		DiskURL: func(key string) string { return r.Pages.URL(disk(key)) }}
	if m, ok := g.Spec.Network.MappingFor(vm.Subnet); ok {
		plan.Subnet = m.Target
		if isolated(j.Type) {
			if m.Test == "" {
				return DeploymentRequest{}, replication.NoTestSubnet(vm)
			}
			plan.Subnet, plan.DynamicIP = m.Test, !m.KeepsIPInTest(vm.StaticIP)
		}
	}
	t, values := MachineDeployment(plan)
	var d DeploymentRequest
	d.Properties.Mode, d.Properties.Template, d.Properties.Parameters = "Incremental", t, map[string]map[string]any{}
	for k, v := range values {
		d.Properties.Parameters[k] = map[string]any{"value": v}
	}
	return d, nil
}
