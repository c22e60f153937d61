package apiserver

import (
	"fmt"
	"reflect"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/standby-dr/standby/shared/api/apiv1"
	"github.com/standby-dr/standby/shared/recovery"
	"github.com/standby-dr/standby/shared/replication"
)

// jsonShape describes what encoding/json makes of a type, as lines "path: kind": field names, whether
// they are omitted when empty, and each value's kind, recursively; names of Go types do not count.
func jsonShape(t reflect.Type, path string, seen map[reflect.Type]bool, out *[]string) {
	if t == reflect.TypeOf(time.Time{}) {
		*out = append(*out, path+": time")
		return
	}
	switch t.Kind() {
	case reflect.Pointer:
		jsonShape(t.Elem(), path+"*", seen, out)
	case reflect.Slice, reflect.Array:
		if t.Elem().Kind() == reflect.Uint8 {
			*out = append(*out, path+": bytes")
			return
		}
		jsonShape(t.Elem(), path+"[]", seen, out)
	case reflect.Map:
		jsonShape(t.Elem(), path+"{"+t.Key().Kind().String()+"}", seen, out)
	case reflect.Struct:
		if seen[t] {
			*out = append(*out, path+": (recursive)")
			return
		}
		seen[t] = true
		defer delete(seen, t)
		for i := range t.NumField() {
			f := t.Field(i)
			tag := f.Tag.Get("json")
			if !f.IsExported() || tag == "-" {
				continue
			}
			name, opts, _ := strings.Cut(tag, ",")
			if f.Anonymous && name == "" {
				jsonShape(f.Type, path, seen, out)
				continue
			}
			if name == "" {
				name = f.Name
			}
			jsonShape(f.Type, fmt.Sprintf("%s.%s(%s)", path, name, opts), seen, out)
		}
	default:
		*out = append(*out, path+": "+t.Kind().String())
	}
}

func shapeOf(v any) []string {
	var out []string
	jsonShape(reflect.TypeOf(v), "", map[reflect.Type]bool{}, &out)
	sort.Strings(out)
	return out
}

// The wire's copies of the domain's types encode exactly as the domain's do, so apiv1.Convert loses
// nothing and the OpenAPI document (built from the copies) describes what the server sends.
func TestWireTypesMatchTheDomain(t *testing.T) {
	for _, pair := range [][2]any{
		{apiv1.GroupSpec{}, replication.GroupSpec{}},
		{apiv1.Capture{}, replication.Capture{}},
		{apiv1.TargetResources{}, replication.TargetResources{}},
		{apiv1.State(""), replication.State("")},
		{apiv1.SeedRequest{}, replication.SeedRequest{}},
		{apiv1.SeedStatus{}, replication.SeedStatus{}},
		{apiv1.AgentReport{}, replication.AgentReport{}},
		{apiv1.AgentInstructions{}, replication.AgentInstructions{}},
		{apiv1.DiskHashes{}, replication.DiskHashes{}},
		{apiv1.PlanSpec{}, recovery.PlanSpec{}},
		{apiv1.JobStep{}, recovery.JobStep{}},
	} {
		wire, domain := shapeOf(pair[0]), shapeOf(pair[1])
		if !reflect.DeepEqual(wire, domain) {
			t.Errorf("%T and %T differ:\nwire:   %s\ndomain: %s", pair[0], pair[1], strings.Join(wire, "\n        "), strings.Join(domain, "\n        "))
		}
	}
}

// The check is not blind: a missing field, another tag and another kind are told apart.
func TestWireShapeSeesADifference(t *testing.T) {
	type a struct {
		X int    `json:"x"`
		Y string `json:"y,omitempty"`
	}
	type missing struct {
		X int `json:"x"`
	}
	type tag struct {
		X int    `json:"x"`
		Y string `json:"y"`
	}
	type kind struct {
		X int64  `json:"x"`
		Y string `json:"y,omitempty"`
	}
	for _, other := range []any{missing{}, tag{}, kind{}} {
		if reflect.DeepEqual(shapeOf(a{}), shapeOf(other)) {
			t.Errorf("%T is taken for the same shape as a", other)
		}
	}
}

// The API's action paths name the domain's job kinds.
func TestActionsNameTheDomainsJobKinds(t *testing.T) {
	for wire, domain := range map[string]string{
		apiv1.JobChangePoint: recovery.JobChangePoint, apiv1.JobReprotect: recovery.JobReprotect,
		apiv1.JobCleanupTest: recovery.JobCleanupTest, apiv1.JobCommit: recovery.JobCommit, apiv1.JobFailback: recovery.JobFailback,
	} {
		if wire != domain {
			t.Errorf("the API's action %q is the domain's job kind %q", wire, domain)
		}
	}
}

// Convert carries a full spec through the wire and back unchanged.
func TestConvertRoundTrip(t *testing.T) {
	spec := replication.GroupSpec{VMs: []replication.VMSpec{{Name: "vm0", Disks: []replication.DiskSpec{{Name: "os", SizeBytes: 1 << 30, Source: "agent"}}}},
		Target: replication.TargetSpec{Container: "g-asr"}, Policy: replication.Policy{RetentionHours: 24}}
	back := apiv1.Convert[replication.GroupSpec](apiv1.Convert[apiv1.GroupSpec](spec))
	if !reflect.DeepEqual(spec, back) {
		t.Errorf("round trip changed the spec:\n%+v\n%+v", spec, back)
	}
}

// Every enum the OpenAPI document states is the domain's own list.
func TestEnumsAreTheDomains(t *testing.T) {
	var states []string
	for _, s := range replication.States {
		states = append(states, string(s))
	}
	for name, domain := range map[string][]string{
		"groupState": states, "health": replication.HealthLevels, "replicationState": replication.ReplicationStates,
		"healthError": replication.HealthErrorCodes, "operation": recovery.OperatorKinds, "jobType": recovery.JobTypes(),
		"jobState": recovery.JobStates, "failoverType": recovery.FailoverKinds(),
	} {
		if !slices.Equal(slices.Sorted(slices.Values(apiv1.Enums[name])), slices.Sorted(slices.Values(domain))) {
			t.Errorf("enum %s: the document says %v, the domain %v", name, apiv1.Enums[name], domain)
		}
	}
}
