package recovery

import (
	"context"
	"fmt"
	"sort"
	"strings"

	"github.com/standby-dr/standby/shared/replication"
)

// Kind is one kind of group job, registered once (as river registers a Worker[T] with AddWorker): its
// steps, what its request must say, when the group's state admits it and the claim it records on the
// group. The engine and admission look a job's kind up by name and know none of them; a new kind is
// one file (kind_<family>.go) that registers it.
type Kind struct {
	// Name is the job's type, as the API and the job rows say it.
	Name string
	// Steps run in order, one per job-queue message.
	Steps []stepDef
	// Cleanup runs after Steps, also when one of them failed (the steps in between skipped): a drill's
	// test resources go whatever its checks found. The job then ends Failed, with the first failure.
	Cleanup []stepDef
	// Failover: POST /groups/{group}/failover (and a plan's failover) may start it.
	Failover bool
	// Isolated: its VMs come up in the group's isolated test network (a drill), not the recovery one.
	Isolated bool
	// TakesSources: its request may say where the agent on each failed-over VM reads its disks.
	TakesSources bool
	// Normalize checks the request's kind-specific fields and fills their defaults (nil: nothing).
	Normalize func(req *Request) error
	// Precheck refuses, before anything is recorded, a job that cannot work (nil: nothing); it may turn
	// the request into another kind (a reprotect after a failback resumes the first direction).
	Precheck func(ctx context.Context, a *Admission, g *replication.Group, req *Request) error
	// Admits says why the group's state does not admit the job ("" when it does; nil: always).
	Admits func(rec *replication.GroupRecord) string
	// Claim records the job's claim on the group, refusing while a conflicting job holds it (nil: none).
	Claim func(ctx context.Context, a *Admission, rec *replication.GroupRecord, job Job) error
}

var kinds = map[string]*Kind{}

// register adds a kind; a name registered twice is a programming error.
func register(k Kind) *Kind {
	if k.Name == "" || len(k.Steps) == 0 {
		panic("recovery: a job kind needs a name and steps")
	}
	if _, dup := kinds[k.Name]; dup {
		panic("recovery: job kind " + k.Name + " registered twice")
	}
	kinds[k.Name] = &k
	return &k
}

// KindOf is the kind registered under name.
func KindOf(name string) (*Kind, error) {
	if k, ok := kinds[name]; ok {
		return k, nil
	}
	return nil, fmt.Errorf("job type %q is not supported (want %s)", name, oneOf(KindNames()))
}

// KindNames are the registered kinds' names, sorted.
func KindNames() []string {
	names := make([]string, 0, len(kinds))
	for n := range kinds {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// FailoverKinds are the kinds POST /failover starts, sorted.
func FailoverKinds() []string {
	var names []string
	for _, n := range KindNames() {
		if kinds[n].Failover {
			names = append(names, n)
		}
	}
	return names
}

// oneOf is names as "a, b or c".
func oneOf(names []string) string {
	if len(names) < 2 {
		return strings.Join(names, "")
	}
	return strings.Join(names[:len(names)-1], ", ") + " or " + names[len(names)-1]
}

// isolated says whether jobs of the type bring their VMs up in the isolated test network.
func isolated(jobType string) bool {
	k, err := KindOf(jobType)
	return err == nil && k.Isolated
}

// isFailover says whether the type is one of the failovers.
func isFailover(jobType string) bool {
	k, err := KindOf(jobType)
	return err == nil && k.Failover
}

// inState admits a job only in the state want; why, formatted with the state found, says what it needs.
func inState(want replication.State, why string) func(*replication.GroupRecord) string {
	return func(rec *replication.GroupRecord) string {
		if rec.State != want {
			return fmt.Sprintf(why, rec.State)
		}
		return ""
	}
}
