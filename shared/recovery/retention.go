package recovery

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/standby-dr/standby/shared/replication"
)

// JobRetention is how long a finished job is kept: as long as a group's history.
const JobRetention = replication.EventRetention

// PruneJobs is the timer's housekeeping of the jobs table: it deletes the jobs that finished more than
// JobRetention ago, except those something still names — a group's failover or way-back job, a job
// holding a recovery point (a test failover its cleanup will read), a plan's active job.
func PruneJobs(store replication.StateStore) replication.Housekeeper {
	return func(ctx context.Context, now time.Time) ([]string, error) {
		held, err := namedJobs(ctx, store)
		if err != nil {
			return nil, err
		}
		type finished struct {
			Job
			etag replication.ETag
		}
		var old []finished
		err = store.ListRows(ctx, JobsTable, JobRow, func(decode func(any) error, etag replication.ETag) error {
			var j Job
			if err := decode(&j); err != nil {
				return err
			}
			if (j.State == JobSucceeded || j.State == JobFailed) && now.Sub(j.UpdatedAt) > JobRetention && !held[j.ID()] {
				old = append(old, finished{j, etag})
			}
			return nil
		})
		if err != nil && !errors.Is(err, replication.ErrNotFound) { // no jobs table yet
			return nil, err
		}
		for _, j := range old { // ETag-guarded: a job that changed since is kept
			if err := store.Delete(ctx, JobsTable, j.ID(), JobRow, j.etag); err != nil &&
				!errors.Is(err, replication.ErrNotFound) && !errors.Is(err, replication.ErrConflict) {
				return nil, err
			}
		}
		if len(old) == 0 {
			return nil, nil
		}
		return []string{fmt.Sprintf("%d jobs finished more than %s ago pruned", len(old), JobRetention)}, nil
	}
}

// namedJobs are the job ids groups, point holds and plans name.
func namedJobs(ctx context.Context, store replication.StateStore) (map[string]bool, error) {
	held := map[string]bool{}
	groups, err := replication.GroupNames(ctx, store)
	if err != nil {
		return nil, err
	}
	for _, name := range groups {
		g, err := replication.LoadGroup(ctx, store, name)
		if errors.Is(err, replication.ErrNoGroup) {
			continue
		}
		if err != nil {
			return nil, err
		}
		held[g.Record.FailoverJob], held[g.Record.WayBackJob] = true, true
		holds, _, err := replication.QueryAll[replication.PointHold](ctx, store, replication.HoldsTable, name)
		if err != nil {
			return nil, err
		}
		for _, h := range holds {
			held[h.HeldByJob] = true
		}
	}
	plans, err := Plans{State: store}.List(ctx)
	for _, p := range plans {
		held[p.ActiveJob] = true
	}
	return held, err
}
