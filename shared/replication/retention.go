package replication

import (
	"sort"
	"time"
)

// pointRef is what retention needs to know of a recovery point.
type pointRef struct {
	ID   string
	Time time.Time // source time of the point
	Kind string    // "crash" or "app"
}

// maxRetention is the longest retention a policy may ask for (15 days, like Site Recovery).
const maxRetention = 15 * 24 * time.Hour

// retentionTier is how sparse points become with age.
type retentionTier struct {
	upTo  time.Duration // ages up to this
	every time.Duration // keep one point per this much time (0: keep all)
}

var retentionTiers = []retentionTier{
	{upTo: 2 * time.Hour, every: 0},
	{upTo: 24 * time.Hour, every: time.Hour},
	{upTo: 7 * 24 * time.Hour, every: 2 * time.Hour},
	{upTo: maxRetention, every: 4 * time.Hour},
}

// retain decides which recovery points to keep at now: every point of the last 2 hours; older ones,
// one per hour up to a day, one per 2 hours for days 2 to 7, one per 4 hours for days 8 to 15 (the
// newest of each slot, slots aligned to the clock so decisions do not drift between runs); nothing
// older than retention (0 keeps only the newest point). The newest app-consistent point inside
// retention is always kept, and so is every point in held (used by a running job). It returns the ids
// to keep and to prune, newest first.
func retain(points []pointRef, now time.Time, retention time.Duration, held map[string]bool) (keep, prune []string) {
	sorted := append([]pointRef(nil), points...)
	sort.Slice(sorted, func(i, j int) bool { return sorted[i].Time.After(sorted[j].Time) })
	retention = min(max(retention, 0), maxRetention)
	newestApp := ""
	for _, p := range sorted {
		if p.Kind == "app" && now.Sub(p.Time) <= max(retention, 0) {
			newestApp = p.ID
			break
		}
	}
	slots := map[[2]int64]bool{}
	for i, p := range sorted {
		age := now.Sub(p.Time)
		k := keepByAge(i, age, p.Time, retention, slots)
		if k || held[p.ID] || p.ID == newestApp {
			keep = append(keep, p.ID)
		} else {
			prune = append(prune, p.ID)
		}
	}
	return keep, prune
}

func keepByAge(index int, age time.Duration, at time.Time, retention time.Duration, slots map[[2]int64]bool) bool {
	if retention == 0 {
		return index == 0 // latest only
	}
	if age > retention {
		return false
	}
	for _, tier := range retentionTiers {
		if age > tier.upTo {
			continue
		}
		if tier.every == 0 {
			return true
		}
		slot := [2]int64{int64(tier.every), at.UnixNano() / int64(tier.every)}
		if slots[slot] {
			return false // a newer point already holds this slot
		}
		slots[slot] = true
		return true
	}
	return false
}
