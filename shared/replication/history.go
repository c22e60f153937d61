package replication

import (
	"context"
	"errors"
	"fmt"
	"math"
	"time"
)

// EventsTable is each group's history (health changes, hook failures), newest first.
const EventsTable = "events"

// Event is one entry of a group's history.
type Event struct {
	Keys
	Time    time.Time `json:"Time"`
	Kind    string    `json:"Kind"`
	Message string    `json:"Message"`
}

// ListEvents returns a group's history, newest first.
func ListEvents(ctx context.Context, store StateStore, group string) ([]Event, error) {
	events, _, err := QueryAll[Event](ctx, store, EventsTable, group)
	return events, err
}

// maxEventsPage bounds a page of history; EventRetention is how long history is kept.
const (
	maxEventsPage  = 500
	EventRetention = 30 * 24 * time.Hour
)

var errPageFull = errors.New("page full")

// eventsPage is up to limit events of a group's history, newest first, after the row key after ("":
// from the newest), and the row key the next page starts after ("" when there is none).
func eventsPage(ctx context.Context, store StateStore, group string, limit int, after string) ([]Event, string, error) {
	var out []Event
	next := ""
	err := store.Query(ctx, EventsTable, group, func(decode func(any) error, _ ETag) error {
		var e Event
		if err := decode(&e); err != nil {
			return err
		}
		if e.RowKey <= after {
			return nil
		}
		if len(out) == limit {
			next = out[len(out)-1].RowKey
			return errPageFull
		}
		out = append(out, e)
		return nil
	})
	if errors.Is(err, errPageFull) {
		err = nil
	}
	return out, next, err
}

// pruneHistory deletes a group's history and quarantined descriptors older than EventRetention, and its
// RPO samples older than rpoKept.
func pruneHistory(ctx context.Context, store StateStore, group string, now time.Time, rpoKept time.Duration) (int, error) {
	deleted := 0
	for _, p := range []struct {
		table, partition string
		kept             time.Duration
	}{{EventsTable, group, EventRetention}, {QuarantineTable, "group-" + group, EventRetention}, {rPOHistoryTable, group, rpoKept}} {
		n, err := pruneOlder(ctx, store, p.table, p.partition, now.Add(-p.kept), 0)
		deleted += n
		if err != nil {
			return deleted, err
		}
	}
	return deleted, nil
}

// RecordEvent appends to a group's history.
func RecordEvent(ctx context.Context, store StateStore, group, kind, message string, at time.Time) error {
	return recordEvent(ctx, store, group, kind, message, at, "")
}

// recordEvent appends to a group's history; id, when given, tells apart events of the same moment
// (the alerts one tick raises) and makes recording it again idempotent.
func recordEvent(ctx context.Context, store StateStore, group, kind, message string, at time.Time, id string) error {
	key := fmt.Sprintf("%020d", math.MaxInt64-at.UnixNano())
	if id != "" {
		key += "~" + id
	}
	_, err := store.Upsert(ctx, EventsTable, Event{Keys: Keys{PartitionKey: group, RowKey: key}, Time: at, Kind: kind, Message: message})
	return err
}
