package recovery

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/standby-dr/standby/shared/replication"
)

// PeerSite is the Standby deployment in the other region, seen through its API. Errors wrap
// ErrConflict, ErrInvalid or ErrNotFound (shared/replication) when the peer refused the request; anything else may pass.
type PeerSite interface {
	// EnableGroup enables replication of the group on the peer (idempotent for the same spec).
	EnableGroup(ctx context.Context, group string, spec replication.GroupSpec) error
	GroupStatus(ctx context.Context, group string) (PeerGroup, error)
	// StartFailover queues a failover job with the given id on the peer; the same id again finds it.
	StartFailover(ctx context.Context, group, failoverType, jobID string) error
	// RemoveGroup disables the group on the peer and removes its data but the disks it was given
	// (idempotent: a group already gone is fine).
	RemoveGroup(ctx context.Context, group string) error
	Job(ctx context.Context, id string) (PeerJob, error)
	// SeedDisks starts, follows and finishes the copy of the original managed disks into the peer's
	// storage (replication.Groups.Seed there); called again until Done.
	SeedDisks(ctx context.Context, group string, req replication.SeedRequest) (replication.SeedStatus, error)
}

// PeerGroup is a group's state on the peer site.
type PeerGroup struct {
	State  replication.State
	Reason string
	// Initial replication as the peer's agent reports it: bytes compared and blocks sent.
	SyncDoneBytes, SyncTotalBytes int64
	BlocksCompared, BlocksSent    int64
}

// PeerJob is a job on the peer site.
type PeerJob struct {
	State, Error, Point string
	// Current is the running step's name and outcome.
	Current string
	Result  map[string]string
}

// permanentError fails its job at once: retrying cannot help.
type permanentError struct{ error }

// peerPatience is how long a step keeps trying a peer site that does not answer: it may be the region
// that is recovering.
const peerPatience = 30 * time.Minute

// peerFailed handles a peer call's error: a refusal (conflict, invalid request, not found) fails the job
// with it; anything else (unreachable, 5xx) is tried again, backing off, for peerPatience.
func (r *JobRunner) peerFailed(j *Job, what string, err error) (string, time.Duration, error) {
	err = fmt.Errorf("%s: %w", what, err)
	if errors.Is(err, replication.ErrConflict) || errors.Is(err, replication.ErrInvalid) || errors.Is(err, replication.ErrNotFound) {
		return "", 0, permanentError{err}
	}
	if r.Now().Sub(j.Steps[j.Next].Started) > peerPatience {
		return "", 0, permanentError{fmt.Errorf("the peer site did not answer for %s: %w", peerPatience, err)}
	}
	return fmt.Sprintf("the peer site does not answer, trying again: %v", err), r.poll(j, 5*time.Second), nil
}

var errNoPeer = permanentError{errors.New("no peer site is configured (set StandbyPeerApi to the other region's Standby API)")}

// withPeer fails a step that talks to the peer site at once when none is configured.
func withPeer(run stepFunc) stepFunc {
	return func(ctx context.Context, r *JobRunner, j *Job, g *replication.Group) (string, time.Duration, error) {
		if r.Peer == nil {
			return "", 0, errNoPeer
		}
		return run(ctx, r, j, g)
	}
}
