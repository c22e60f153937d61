package replication

import (
	"fmt"
	"testing"
	"time"
)

func TestRetainTable(t *testing.T) {
	now := time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC)
	at := func(ago time.Duration) time.Time { return now.Add(-ago) }
	p := func(id string, ago time.Duration, kind string) pointRef {
		return pointRef{ID: id, Time: at(ago), Kind: kind}
	}
	cases := []struct {
		name      string
		points    []pointRef
		retention time.Duration
		held      []string
		keep      string
	}{
		{"everything within two hours", []pointRef{p("a", 0, "crash"), p("b", 5*time.Minute, "crash"), p("c", 119*time.Minute, "crash")}, 24 * time.Hour, nil, "[a b c]"},
		{"one per hour after two hours", []pointRef{p("a", 150*time.Minute, "crash"), p("b", 160*time.Minute, "crash"), p("c", 190*time.Minute, "crash")}, 24 * time.Hour, nil, "[a c]"},
		{"nothing past retention", []pointRef{p("a", time.Hour, "crash"), p("b", 5*time.Hour, "crash")}, 4 * time.Hour, nil, "[a]"},
		{"retention zero keeps the latest only", []pointRef{p("a", time.Minute, "crash"), p("b", 2*time.Minute, "crash")}, 0, nil, "[a]"},
		{"the newest app point is kept", []pointRef{p("a", 150*time.Minute, "crash"), p("b", 155*time.Minute, "app"), p("c", 156*time.Minute, "app")}, 24 * time.Hour, nil, "[a b]"},
		{"an app point past retention is not", []pointRef{p("a", time.Hour, "crash"), p("b", 30*time.Hour, "app")}, 24 * time.Hour, nil, "[a]"},
		{"a held point is never pruned", []pointRef{p("a", time.Hour, "crash"), p("b", 40*time.Hour, "crash")}, 24 * time.Hour, []string{"b"}, "[a b]"},
		{"retention is capped at 15 days", []pointRef{p("a", 16*24*time.Hour, "crash")}, 30 * 24 * time.Hour, nil, "[]"},
	}
	for _, c := range cases {
		held := map[string]bool{}
		for _, h := range c.held {
			held[h] = true
		}
		keep, prune := retain(c.points, now, c.retention, held)
		if fmt.Sprint(keep) != c.keep && !(len(keep) == 0 && c.keep == "[]") {
			t.Errorf("%s: keep %v, want %s (pruned %v)", c.name, keep, c.keep, prune)
		}
		if len(keep)+len(prune) != len(c.points) {
			t.Errorf("%s: %d kept + %d pruned of %d points", c.name, len(keep), len(prune), len(c.points))
		}
	}
}

// Fifteen days of a point every 5 minutes, with retention run every hour as the clock advances (as the
// timer does): at the end the survivors follow the tiers exactly.
func TestRetainOverFifteenDays(t *testing.T) {
	start := time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)
	var points []pointRef
	byID := map[string]pointRef{}
	clock := start
	for ; clock.Before(start.Add(maxRetention)); clock = clock.Add(5 * time.Minute) {
		p := pointRef{ID: clock.Format(time.RFC3339), Time: clock, Kind: "crash"}
		points = append(points, p)
		byID[p.ID] = p
		if clock.Minute() == 0 {
			keep, _ := retain(points, clock, maxRetention, nil)
			points = points[:0]
			for _, id := range keep {
				points = append(points, byID[id])
			}
		}
	}
	now := clock.Add(-5 * time.Minute)
	keep, _ := retain(points, now, maxRetention, nil)
	counts := map[string]int{}
	for _, id := range keep {
		age := now.Sub(byID[id].Time)
		switch {
		case age <= 2*time.Hour:
			counts["0-2h"]++
		case age <= 24*time.Hour:
			counts["2h-1d"]++
		case age <= 7*24*time.Hour:
			counts["1d-7d"]++
		default:
			counts["7d-15d"]++
		}
	}
	// 2 h at 5 min = 25 points (both ends); then one per hour, per 2 hours, per 4 hours.
	want := map[string]int{"0-2h": 25, "2h-1d": 22, "1d-7d": 72, "7d-15d": 48}
	for tier, n := range want {
		if d := counts[tier] - n; d < -1 || d > 1 { // a slot straddling a tier boundary may add or lose one
			t.Errorf("tier %s keeps %d points, want %d (all: %v)", tier, counts[tier], n, counts)
		}
	}
}
