package agent

import (
	"context"
	"errors"
	"math/rand"
	"time"

	"github.com/standby-dr/standby/shared/replication"
)

// Workload writes to every disk of the group through the agent's write API: random and sequential
// 4 KiB-aligned writes from 4 KiB to 4 MiB, overlapping, at a target rate.
type Workload struct {
	Agent *Agent
	Disks []replication.DiskRefSpec
	// BytesPerSecond is the target rate (0: as fast as the pipeline takes them).
	BytesPerSecond float64
	Seed           int64
}

// WorkloadStats counts what a workload wrote.
type WorkloadStats struct {
	Writes int64
	Bytes  int64
}

// Run writes until ctx ends.
func (w *Workload) Run(ctx context.Context) (WorkloadStats, error) {
	if len(w.Disks) == 0 {
		return WorkloadStats{}, errors.New("the workload has no disk to write (every disk is an OS disk)")
	}
	rng := rand.New(rand.NewSource(w.Seed))
	var st WorkloadStats
	start := time.Now()
	seqNext := map[string]int64{}
	for ctx.Err() == nil {
		d := w.Disks[rng.Intn(len(w.Disks))]
		var length int64
		switch p := rng.Intn(100); {
		case p < 70:
			length = int64(1+rng.Intn(64)) * 4096 // 4 KiB - 256 KiB
		case p < 95:
			length = int64(64+rng.Intn(192)) * 4096 // 256 KiB - 1 MiB
		default:
			length = int64(256+rng.Intn(769)) * 4096 // 1 MiB - 4 MiB
		}
		length = min(length, d.Spec.SizeBytes)
		var off int64
		if rng.Intn(4) == 0 { // sequential: continue where the last sequential write stopped
			off = seqNext[d.Key]
			if off+length > d.Spec.SizeBytes {
				off = 0
			}
			seqNext[d.Key] = off + length
		} else {
			off = int64(rng.Int63n((d.Spec.SizeBytes-length)/4096+1)) * 4096
		}
		data := make([]byte, length)
		if rng.Intn(10) > 0 { // one write in ten is zeros (a trim, a zeroed file)
			rng.Read(data)
		}
		if err := w.Agent.Write(d.Key, off, data); err != nil {
			return st, err
		}
		st.Writes++
		st.Bytes += length
		if w.BytesPerSecond > 0 {
			due := start.Add(time.Duration(float64(st.Bytes) / w.BytesPerSecond * float64(time.Second)))
			if wait := time.Until(due); wait > 0 {
				select {
				case <-ctx.Done():
				case <-time.After(wait):
				}
			}
		}
	}
	return st, nil
}
