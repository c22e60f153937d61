package agent

import (
	"context"
	"fmt"
	"time"

	"github.com/standby-dr/standby/shared/replication"
)

// The stream's numbering: where a restarted agent goes on from (what the journal holds), and how it
// leaves a numbering the group cannot take, or a sequence another holder of the key took.

// resumeStored publishes the descriptors of the batches the journal holds past st.Published (a crash
// between storing and publishing), moving st.Published on, and returns the next sequence to use and
// whether a stored batch in reach was not this agent's (a resync makes up for it).
func (a *Agent) resumeStored(ctx context.Context, st *state) (int64, bool, error) {
	cfg := a.cfg
	stored, err := cfg.Journal.List(ctx, cfg.Group)
	if err != nil {
		return 0, false, err
	}
	// Only batches this agent could have stored count: whoever can write the journal (on Azure every
	// agent's identity can) may put a blob at any sequence, and numbering on from a forged 10^15 would
	// have every later report refused. So a stored batch moves the numbering on only when it lies within
	// maxStoredAhead of what the group is known to have and opens under the group's key.
	next, damaged := max(st.NextSeq, 1), false
	known := max(st.Published, cfg.SeqFloor)
	for _, seq := range stored {
		if seq <= st.Published {
			next = max(next, seq+1)
			continue
		}
		if seq > known+maxStoredAhead {
			cfg.Log.Warn("a stored batch lies far past what the group has: not this agent's, ignored", "seq", seq, "groupSeq", known)
			continue
		}
		sealed, err := cfg.Journal.Get(ctx, cfg.Group, seq)
		if err != nil {
			return 0, false, err
		}
		payload, err := replication.OpenPayload(cfg.StreamKey, cfg.Group, seq, sealed)
		var b *replication.Batch
		if err == nil {
			b, err = replication.DecodeBatch(payload)
		}
		if err != nil { // not this agent's, or damaged: never sent; a resync makes up for it
			cfg.Log.Warn("a stored batch is damaged or not this agent's: not sent, resyncing", "seq", seq, "err", err)
			damaged = true
			continue
		}
		if st.NextSeq > 0 && seq >= st.NextSeq {
			// Signed with the group's key, at a sequence this agent never numbered: another holder of
			// the stream key wrote it. The sequence is taken; the run reports it and resyncs.
			cfg.Log.Error("the journal holds a batch signed with the group's key that this agent never numbered; resyncing", "seq", seq)
			a.conflict.Store(seq)
			next, damaged = max(next, seq+1), true
			continue
		}
		if err := a.publish(ctx, replication.SignedDescriptor(cfg.StreamKey, b, sealed)); err != nil {
			return 0, false, err
		}
		next = max(next, seq+1)
		st.Published = seq
		cfg.Log.Info("descriptor re-sent after restart", "seq", seq)
	}
	return next, damaged, nil
}

// Renumber moves the stream's numbering to just past floor, the group's sequence, when it runs more
// than the API accepts past it (replication.MaxSeqAhead: the agent's reports are refused, so nothing
// it sends can be applied — a state file from elsewhere, or a bug). Batches already numbered beyond
// are dropped unsent; the caller resyncs to make up for them. It reports whether it renumbered.
func (a *Agent) Renumber(floor int64) (bool, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.nextSeq <= floor+replication.MaxSeqAhead {
		return false, nil
	}
	a.cfg.Log.Warn("the agent's numbering runs past what the group accepts: numbering on from the group's sequence and resyncing",
		"seq", a.nextSeq, "groupSeq", floor)
	a.sealLocked()
	a.renumberedTo.Store(floor + 1)
	a.nextSeq = floor + 1
	a.statsMu.Lock()
	a.stats.LastPublished = floor
	a.statsMu.Unlock()
	return true, a.saveState(state{NextSeq: floor + 1, Published: floor})
}

// NoteError keeps err as the last error the agent met (its reports carry it).
func (a *Agent) NoteError(what string, err error) {
	msg := fmt.Sprintf("%s: %v (at %s)", what, err, a.cfg.Now().UTC().Format(time.RFC3339))
	a.lastError.Store(&msg)
}

// LastError is the last error the agent met ("" for none).
func (a *Agent) LastError() string {
	if msg := a.lastError.Load(); msg != nil {
		return *msg
	}
	return ""
}

// TakeConflict returns (and forgets) the last sequence at which the journal held another batch
// signed with the group's key, so this agent's batch there was not sent (0: none).
func (a *Agent) TakeConflict() int64 { return a.conflict.Swap(0) }

// abandoned reports whether a queued batch is of a numbering Renumber gave up.
func (a *Agent) abandoned(seq int64) bool {
	first := a.renumberedTo.Load()
	if first == 0 {
		return false
	}
	if seq == first { // the new numbering's first: everything queued before it has passed
		a.renumberedTo.CompareAndSwap(first, 0)
		return false
	}
	return true
}
