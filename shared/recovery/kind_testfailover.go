package recovery

import (
	"context"
	"fmt"

	"github.com/standby-dr/standby/shared/replication"
)

// The test failover family: a drill brings the group's VMs up from a point in the isolated test
// network while replication goes on, and its cleanup removes them. One test failover at a time: the
// group's ActiveTestFailover claim holds until the cleanup.

const (
	JobTestFailover = "test"
	JobCleanupTest  = "cleanup-test-failover"
)

var cleanupSteps = []stepDef{
	{"delete-test-vms", deleteTestVMs},
	{"delete-test-disks", deleteTestDisks},
	{"release-holds", releaseTestHolds},
}

var _ = register(Kind{
	Name:      JobTestFailover,
	Steps:     materialize,
	Failover:  true,
	Isolated:  true,
	Normalize: defaultPoint,
	Precheck: func(_ context.Context, _ *Admission, g *replication.Group, _ *Request) error {
		if err := g.Spec.CheckTestNetwork(); err != nil {
			return fmt.Errorf("%w: cannot run a test failover: %v", replication.ErrState, err)
		}
		return nil
	},
	Admits: testFailoverAdmits,
	Claim: func(_ context.Context, _ *Admission, rec *replication.GroupRecord, job Job) error {
		rec.ActiveTestFailover = job.ID()
		return nil
	},
})

var _ = register(Kind{
	Name:  JobCleanupTest,
	Steps: cleanupSteps,
	Admits: func(rec *replication.GroupRecord) string {
		if rec.ActiveTestFailover == "" {
			return "no test failover to clean up"
		}
		return ""
	},
	Claim: func(_ context.Context, _ *Admission, rec *replication.GroupRecord, _ Job) error {
		rec.ActiveTestFailover = ""
		return nil
	},
})

// testFailoverAdmits admits a test failover (or a drill) while none is active, once the group has a point.
func testFailoverAdmits(rec *replication.GroupRecord) string {
	switch {
	case rec.ActiveTestFailover != "":
		return fmt.Sprintf("test failover %s is active: clean it up first", rec.ActiveTestFailover)
	case rec.LastPointTime.IsZero():
		return fmt.Sprintf("the group has no recovery point yet (state %s)", rec.State)
	}
	return ""
}

// defaultPoint fills a failover's point choice: the newest point apply has processed.
func defaultPoint(req *Request) error {
	if req.RecoveryPoint == "" {
		req.RecoveryPoint = "latestProcessed"
	}
	return nil
}
