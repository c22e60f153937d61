package apiserver

import (
	"context"
	"errors"
	"fmt"
	"net/http"

	"github.com/standby-dr/standby/shared/api/apiclient"
	"github.com/standby-dr/standby/shared/api/apiv1"
	"github.com/standby-dr/standby/shared/recovery"
	"github.com/standby-dr/standby/shared/replication"
)

// Peer is the other region's Standby deployment as reprotect and failback see it.
type Peer struct{ Client *apiclient.Client }

// NewPeer is the peer site at base, called through its peer door with key (a function key of its peer
// function, which opens nothing else).
func NewPeer(base, key string) Peer {
	c := apiclient.New(base, key)
	c.Door = "/peer"
	return Peer{Client: c}
}

var _ recovery.PeerSite = Peer{}

// peerError carries the peer's refusals as the domain's errors (which jobs do not retry).
func peerError(err error) error {
	var e *apiclient.Error
	if !errors.As(err, &e) {
		return err
	}
	switch e.Status {
	case http.StatusConflict:
		return fmt.Errorf("%w: peer site: %v", replication.ErrConflict, e)
	case http.StatusBadRequest:
		return fmt.Errorf("%w: peer site: %v", replication.ErrInvalid, e)
	case http.StatusNotFound:
		return fmt.Errorf("%w: peer site: %v", replication.ErrNotFound, e)
	}
	return fmt.Errorf("peer site: %w", e)
}

// EnableGroup PUTs the group's spec on the peer.
func (p Peer) EnableGroup(ctx context.Context, group string, spec replication.GroupSpec) error {
	_, _, err := p.Client.PutGroup(ctx, group, apiv1.Convert[apiv1.GroupSpec](spec))
	return peerError(err)
}

// GroupStatus reads the group's state and first-sync counts on the peer.
func (p Peer) GroupStatus(ctx context.Context, group string) (recovery.PeerGroup, error) {
	v, err := p.Client.Group(ctx, group)
	if err != nil {
		return recovery.PeerGroup{}, peerError(err)
	}
	pg := recovery.PeerGroup{State: replication.State(v.State), Reason: v.Reason}
	if b := v.InitialReplication; b != nil {
		pg.SyncDoneBytes, pg.SyncTotalBytes, pg.BlocksCompared, pg.BlocksSent = b.DoneBytes, b.TotalBytes, b.BlocksCompared, b.BlocksSent
	}
	return pg, nil
}

// StartFailover queues a failover with the given job id on the peer (idempotent for the same id).
func (p Peer) StartFailover(ctx context.Context, group, failoverType, jobID string) error {
	_, err := p.Client.Do(ctx, http.MethodPost, "/v1/groups/"+group+"/failover", apiv1.FailoverRequest{Type: failoverType, JobID: jobID}, nil)
	return peerError(err)
}

// RemoveGroup disables the group on the peer, removing its data (a group already gone is fine).
func (p Peer) RemoveGroup(ctx context.Context, group string) error {
	_, err := p.Client.Do(ctx, http.MethodDelete, "/v1/groups/"+group+"?keepData=false", nil, nil)
	var e *apiclient.Error
	if errors.As(err, &e) && e.Status == http.StatusNotFound {
		return nil
	}
	return peerError(err)
}

// Job reads a job on the peer.
func (p Peer) Job(ctx context.Context, id string) (recovery.PeerJob, error) {
	j, err := p.Client.Job(ctx, id)
	if err != nil {
		return recovery.PeerJob{}, peerError(err)
	}
	pj := recovery.PeerJob{State: j.State, Error: j.Error, Point: j.Point, Result: j.Result}
	for _, s := range j.Steps {
		if s.State != "done" {
			pj.Current = s.Name + ": " + s.Outcome
			break
		}
	}
	return pj, nil
}

// SeedDisks asks the peer to seed disks from managed disks, and reports their copies.
func (p Peer) SeedDisks(ctx context.Context, group string, req replication.SeedRequest) (replication.SeedStatus, error) {
	var st apiv1.SeedStatus
	_, err := p.Client.Do(ctx, http.MethodPost, "/v1/groups/"+group+"/seed", apiv1.Convert[apiv1.SeedRequest](req), &st)
	return apiv1.Convert[replication.SeedStatus](st), peerError(err)
}
