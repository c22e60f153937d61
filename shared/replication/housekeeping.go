package replication

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// What the deployment keeps beyond its groups is bounded too: the timer's own runs, the events of the
// change stream that were not descriptors (by hub partition), and what other domains keep (finished
// jobs: recovery.PruneJobs), pruned once an hour.
const (
	runRetention = 7 * 24 * time.Hour
	// MaxQuarantinedPerPartition bounds a hub partition's quarantine: a flood of forged events keeps only
	// the newest.
	MaxQuarantinedPerPartition = 10000
	housekeepingInterval       = time.Hour
)

// Housekeeper prunes what a domain keeps for the deployment as a whole; it returns a line per change.
type Housekeeper func(ctx context.Context, now time.Time) ([]string, error)

// quarantinePartitionsKey is the quarantine's index partition: a row per hub partition that ever
// quarantined an event, so that housekeeping finds them.
const quarantinePartitionsKey = "partitions"

// housekeep prunes, at most once per housekeepingInterval (recorded in RunsTable), the timer's runs,
// each hub partition's quarantine, and whatever s.Housekeepers prune.
func (s *Upkeep) housekeep(ctx context.Context, now time.Time) ([]string, error) {
	var last TimerRun
	if _, err := s.State.Get(ctx, RunsTable, "housekeeping", "last", &last); err != nil && !errors.Is(err, ErrNotFound) {
		return nil, err
	}
	if now.Sub(last.RanAt) < housekeepingInterval {
		return nil, nil
	}
	var logs []string
	n, err := pruneOlder(ctx, s.State, RunsTable, "cutpoints", now.Add(-runRetention), 0)
	if n > 0 {
		logs = append(logs, fmt.Sprintf("%d timer runs older than %s pruned", n, runRetention))
	}
	if err == nil {
		var lines []string
		lines, err = s.pruneQuarantine(ctx, now)
		logs = append(logs, lines...)
	}
	for _, h := range s.Housekeepers {
		if err != nil {
			break
		}
		var lines []string
		lines, err = h(ctx, now)
		logs = append(logs, lines...)
	}
	if err != nil {
		return logs, fmt.Errorf("housekeeping: %w", err)
	}
	_, err = s.State.Upsert(ctx, RunsTable, TimerRun{Keys: Keys{PartitionKey: "housekeeping", RowKey: "last"}, RanAt: now})
	return logs, err
}

// pruneQuarantine prunes each hub partition's quarantine to what is younger than EventRetention and
// to its newest MaxQuarantinedPerPartition events.
func (s *Upkeep) pruneQuarantine(ctx context.Context, now time.Time) ([]string, error) {
	index, _, err := QueryAll[Keys](ctx, s.State, QuarantineTable, quarantinePartitionsKey)
	if err != nil && !errors.Is(err, ErrNotFound) {
		return nil, err
	}
	var logs []string
	for _, p := range index {
		n, err := pruneOlder(ctx, s.State, QuarantineTable, p.RowKey, now.Add(-EventRetention), MaxQuarantinedPerPartition)
		if n > 0 {
			logs = append(logs, fmt.Sprintf("%s: %d quarantined events pruned", p.RowKey, n))
		}
		if err != nil {
			return logs, err
		}
	}
	return logs, nil
}

// pruneOlder deletes a partition's rows (in row-key order, oldest first) whose Time or RanAt is before
// cutoff, and, when keep > 0, the oldest beyond the newest keep.
func pruneOlder(ctx context.Context, store StateStore, table, partition string, cutoff time.Time, keep int) (int, error) {
	rows, _, err := QueryAll[struct {
		Keys
		Time  time.Time `json:"Time"`
		RanAt time.Time `json:"RanAt"`
	}](ctx, store, table, partition)
	if errors.Is(err, ErrNotFound) {
		return 0, nil
	}
	if err != nil {
		return 0, err
	}
	deleted := 0
	for i, r := range rows {
		at := r.Time
		if at.IsZero() {
			at = r.RanAt
		}
		if !at.Before(cutoff) && (keep <= 0 || len(rows)-i <= keep) {
			continue
		}
		if err := store.Delete(ctx, table, r.PartitionKey, r.RowKey, ""); err != nil && !errors.Is(err, ErrNotFound) {
			return deleted, err
		}
		deleted++
	}
	return deleted, nil
}
