package recovery

import (
	"context"
	"fmt"

	"github.com/standby-dr/standby/shared/replication"
)

// The way back: reprotect replicates a committed failover's disks back to the original region, failback
// runs a planned failover there, and a reprotect after a failback resumes the first direction. They
// drive the other region's deployment (the peer site) and hold the group's WayBackJob claim, one at a
// time.

const (
	JobReprotect = "reprotect"
	JobFailback  = "failback"
	// JobReprotectForward is a reprotect after a failback: replication resumes in the first direction.
	JobReprotectForward = "reprotect-forward"
)

var reprotectSteps = []stepDef{
	{"seed-on-peer", withPeer(seedOnPeer)},
	{"enable-on-peer", withPeer(enableOnPeer)},
	{"wait-peer-protected", withPeer(waitPeerProtected)},
	{"mark-reprotected", markReprotected},
}

var reprotectForwardSteps = []stepDef{
	{"retire-peer-group", withPeer(retirePeerGroup)},
	{"resume-protection", resumeProtection},
	{"wait-protected", waitProtected},
}

var failbackSteps = []stepDef{
	{"peer-planned-failover", withPeer(peerPlannedFailover)},
	{"wait-peer-failover", withPeer(waitPeerFailover)},
	{"mark-failed-back", markFailedBack},
}

var _ = register(Kind{
	Name:         JobReprotect,
	Steps:        reprotectSteps,
	TakesSources: true,
	Precheck: func(ctx context.Context, a *Admission, g *replication.Group, req *Request) error {
		if err := needPeer(a); err != nil {
			return err
		}
		switch g.Record.State {
		case replication.StateFailedBack:
			req.Type = JobReprotectForward
		case replication.StateCommitted:
			fo, err := LoadJob(ctx, a.State, g.Record.FailoverJob)
			if err != nil {
				return fmt.Errorf("failover job %s: %w", g.Record.FailoverJob, err)
			}
			if _, _, err := ReverseSpec(g.Record.Group(), g.Spec, fo.Container, a.Pages.URL, req.Sources); err != nil {
				return fmt.Errorf("%w: cannot reprotect: %v", replication.ErrState, err)
			}
		}
		return nil
	},
	Admits: func(rec *replication.GroupRecord) string {
		switch rec.State {
		case replication.StateCommitted:
			return ""
		case replication.StateFailedOver:
			return "reprotect needs a committed failover; the group is FailedOver: commit it first"
		}
		return fmt.Sprintf("reprotect needs a committed failover; the group is %s", rec.State)
	},
	Claim: claimWayBack,
})

var _ = register(Kind{
	Name:  JobFailback,
	Steps: failbackSteps,
	Precheck: func(_ context.Context, a *Admission, _ *replication.Group, _ *Request) error {
		return needPeer(a)
	},
	Admits: inState(replication.StateReprotected, "failback needs a Reprotected group (replicating back); it is %s"),
	Claim:  claimWayBack,
})

var _ = register(Kind{
	Name:   JobReprotectForward,
	Steps:  reprotectForwardSteps,
	Admits: inState(replication.StateFailedBack, "the group is %s, no longer FailedBack"),
	Claim:  claimWayBack,
})

func needPeer(a *Admission) error {
	if !a.PeerConfigured {
		return fmt.Errorf("%w: peer site: reprotect and failback drive the other region's Standby deployment: set StandbyPeerApi (and StandbyPeerApiKey)", replication.ErrNotConfigured)
	}
	return nil
}

// claimWayBack records the group's one way-back job, refusing while another runs.
func claimWayBack(ctx context.Context, a *Admission, rec *replication.GroupRecord, job Job) error {
	if err := a.busy(ctx, rec.WayBackJob, (*Job).Terminal, func(j Job) string { return j.Type }); err != nil {
		return err
	}
	rec.WayBackJob = job.ID()
	return nil
}
