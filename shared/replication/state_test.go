package replication_test

import (
	"errors"
	"testing"
	"time"

	"github.com/standby-dr/standby/shared/replication"
)

func TestTheLifeCycle(t *testing.T) {
	allowed := [][2]replication.State{
		{replication.StateInitialReplication, replication.StateProtected},
		{replication.StateProtected, replication.StateResyncRequired},
		{replication.StateResyncRequired, replication.StateResyncing},
		{replication.StateResyncing, replication.StateProtected},
		{replication.StateProtected, replication.StateFailedOver},
		{replication.StateFailedOver, replication.StateFailedOver}, // a change of recovery point
		{replication.StateFailedOver, replication.StateCommitted},
		{replication.StateCommitted, replication.StateReprotected},
		{replication.StateReprotected, replication.StateFailedBack},
		{replication.StateFailedBack, replication.StateResyncRequired},
		{replication.StateCommitted, replication.StateDisabled},
		{replication.StateDisabled, replication.StateFailedOver}, // kept data: its points can still be failed over to
	}
	for _, m := range allowed {
		r := replication.GroupState{State: m[0]}
		if err := r.Move(m[1], "why", time.Now()); err != nil || r.State != m[1] || r.Reason != "why" {
			t.Errorf("%s → %s: %v (state %s)", m[0], m[1], err, r.State)
		}
	}
	refused := [][2]replication.State{
		{replication.StateFailedOver, replication.StateResyncRequired}, // a resync would restart apply onto failed-over disks
		{replication.StateCommitted, replication.StateFailedOver},
		{replication.StateDisabled, replication.StateProtected},
		{replication.StateReprotected, replication.StateProtected},
	}
	for _, m := range refused {
		r := replication.GroupState{State: m[0], Reason: "kept"}
		if err := r.Move(m[1], "why", time.Now()); !errors.Is(err, replication.ErrState) || r.State != m[0] || r.Reason != "kept" {
			t.Errorf("%s → %s allowed or changed the record: %v (state %s)", m[0], m[1], err, r.State)
		}
	}
}
