package replication

import (
	"fmt"
	"slices"
	"time"
)

// State is where a consistency group stands. Every change of a group's state goes through Move, so
// the transitions below are the whole life cycle:
//
//	InitialReplication ─► Protected ◄─► ResyncRequired ─► Resyncing ─► Protected   (replicating this way)
//	any of those ─► FailedOver ─► Committed ─► Reprotected ─► FailedBack ─► ResyncRequired
//	any state ─► Disabled (the operator's DELETE; the group's rows may then be removed) ─► FailedOver
type State string

// Group states.
const (
	StateInitialReplication State = "InitialReplication"
	StateProtected          State = "Protected"
	StateResyncRequired     State = "ResyncRequired"
	StateResyncing          State = "Resyncing"
	StateDisabled           State = "Disabled"
	StateFailedOver         State = "FailedOver" // the group runs from the target's failover disks
	StateCommitted          State = "Committed"  // failover finalized: the other recovery points are gone
	// StateReprotected: replication runs backwards, from the failover disks to the original disks,
	// through the peer site.
	StateReprotected State = "Reprotected"
	// StateFailedBack: the peer site failed the group back over to the original region.
	StateFailedBack State = "FailedBack"
)

// States are every state a group can be in.
var States = []State{StateInitialReplication, StateProtected, StateResyncRequired, StateResyncing, StateDisabled, StateFailedOver,
	StateCommitted, StateReprotected, StateFailedBack}

// replicating are the states in which the source's writes flow this way.
var replicating = []State{StateInitialReplication, StateProtected, StateResyncRequired, StateResyncing}

// transitions lists, for each state, the states it may move to (besides Disabled, always allowed, and
// staying where it is, which redelivered steps do).
var transitions = map[State][]State{
	StateInitialReplication: append([]State{StateFailedOver}, replicating...),
	StateProtected:          append([]State{StateFailedOver}, replicating...),
	StateResyncRequired:     append([]State{StateFailedOver}, replicating...),
	StateResyncing:          append([]State{StateFailedOver}, replicating...),
	StateFailedOver:         {StateCommitted},
	StateCommitted:          {StateReprotected},
	StateReprotected:        {StateFailedBack},
	StateFailedBack:         {StateResyncRequired},
	// A group disabled with its data kept still has its recovery points: it can be failed over to one.
	StateDisabled: {StateFailedOver},
}

// canMove reports whether a group in state from may move to state to.
func canMove(from, to State) bool {
	return from == to || to == StateDisabled || slices.Contains(transitions[from], to)
}

// Move changes the record's state with the reason, or refuses with ErrState naming both states.
func (r *GroupState) Move(to State, reason string, now time.Time) error {
	if !canMove(r.State, to) {
		return fmt.Errorf("%w: the group is %s and cannot become %s", ErrState, r.State, to)
	}
	r.State, r.Reason, r.UpdatedAt = to, reason, now
	return nil
}

// ReplicationStopped reports whether the group's replication (this way) has stopped: disabled, failed
// over, or running the other way. Apply writes nothing and cutpoints cuts nothing then.
func (r *GroupState) ReplicationStopped() bool { return !slices.Contains(replicating, r.State) }

// FailedOver reports whether the group has failed over (and not yet come back this way).
func (r *GroupState) FailedOver() bool {
	return r.State == StateFailedOver || r.State == StateCommitted || r.State == StateReprotected || r.State == StateFailedBack
}
