package replication

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// DefaultMaxTargetBytes is the deployment's quota of replicated disk bytes when none is set: 256 TiB.
const DefaultMaxTargetBytes = 256 << 40

// The quota is checked and taken in one ETag-guarded change of one row, the ledger: an enable reserves
// its group's bytes there before it creates anything, so of two concurrent enables the second counts
// the first. A group that exists counts by its own rows; the ledger only carries enables in flight,
// and a reservation older than reservationLife (a crashed enable) no longer counts.
const (
	quotaPartition  = "~quota" // not a group name: the grammar has no '~'
	quotaRow        = "ledger"
	reservationLife = 15 * time.Minute
)

type quotaLedger struct {
	Keys
	Reservations map[string]quotaReservation `json:"Reservations"`
}

type quotaReservation struct {
	Bytes int64     `json:"bytes"`
	At    time.Time `json:"at"`
}

// reserveQuota takes group's bytes from the deployment's quota, or refuses with ErrConflict naming it.
func (s *Groups) reserveQuota(ctx context.Context, group string, spec GroupSpec) error {
	limit := s.MaxTargetBytes
	if limit <= 0 {
		limit = DefaultMaxTargetBytes
	}
	want := int64(0)
	for _, d := range spec.Disks() {
		want += d.Spec.SizeBytes
	}
	now := s.now()
	_, err := Mutate(ctx, s.State, GroupsTable, quotaPartition, quotaRow, func(l *quotaLedger, _ bool) error {
		l.Keys = Keys{PartitionKey: quotaPartition, RowKey: quotaRow}
		existing, err := s.groupBytes(ctx)
		if err != nil {
			return err
		}
		total := want
		for _, b := range existing {
			total += b
		}
		for name, r := range l.Reservations {
			_, exists := existing[name]
			if exists || name == group || now.Sub(r.At) > reservationLife {
				delete(l.Reservations, name) // counted by its rows, replaced below, or abandoned
				continue
			}
			total += r.Bytes
		}
		if total > limit {
			return fmt.Errorf("%w: the deployment's groups would replicate %d bytes, more than its quota of %d (StandbyMaxTargetBytes)", ErrConflict, total, limit)
		}
		if l.Reservations == nil {
			l.Reservations = map[string]quotaReservation{}
		}
		l.Reservations[group] = quotaReservation{Bytes: want, At: now}
		return nil
	})
	return err
}

// releaseQuota gives back a reservation whose enable failed.
func (s *Groups) releaseQuota(ctx context.Context, group string) {
	_, err := Mutate(ctx, s.State, GroupsTable, quotaPartition, quotaRow, func(l *quotaLedger, found bool) error {
		if _, ok := l.Reservations[group]; !found || !ok {
			return ErrUnchanged
		}
		delete(l.Reservations, group)
		return nil
	})
	if err != nil && !errors.Is(err, ErrUnchanged) {
		s.Log.Warn("releasing a quota reservation (it lapses by itself)", "group", group, "err", err)
	}
}

// groupBytes is each existing group's replicated bytes.
func (s *Groups) groupBytes(ctx context.Context) (map[string]int64, error) {
	names, err := GroupNames(ctx, s.State)
	if err != nil {
		return nil, err
	}
	out := map[string]int64{}
	for _, name := range names {
		g, err := LoadGroup(ctx, s.State, name)
		if errors.Is(err, ErrNoGroup) {
			continue
		}
		if err != nil {
			return nil, err
		}
		for _, d := range g.Spec.Disks() {
			out[name] += d.Spec.SizeBytes
		}
	}
	return out, nil
}
