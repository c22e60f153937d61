package tests

import (
	"context"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/standby-dr/standby/shared/api/apiserver"
	"github.com/standby-dr/standby/shared/replication"
	"github.com/standby-dr/standby/shared/standin/memstore"
	"github.com/standby-dr/standby/shared/testkit/peertest"
)

// The peer adapter keeps the PeerSite contract against the real api function, through the peer door.
func TestPeerSiteContract(t *testing.T) {
	peertest.Run(t, func(t *testing.T) peertest.Fixture {
		state, pages := memstore.NewState(), memstore.NewPages()
		srv := httptest.NewServer(newAPI(state, pages, memstore.NewJournal(), memstore.NewQueue(memstore.QueueOptions{})).Handler())
		t.Cleanup(srv.Close)
		return peertest.Fixture{Peer: apiserver.NewPeer(srv.URL+"/api", ""), GivePointsTo: func(t *testing.T, group string) {
			if _, err := replication.UpdateGroup(context.Background(), state, group, replication.AllRows, func(r *replication.GroupRecord) error {
				r.State, r.LastPointTime = replication.StateProtected, time.Now()
				return nil
			}); err != nil {
				t.Fatal(err)
			}
		}}
	})
}
