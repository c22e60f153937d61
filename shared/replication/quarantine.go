package replication

import (
	"context"
	"fmt"
	"time"
)

// QuarantineTable keeps change-stream events that are not valid descriptors.
const QuarantineTable = "quarantine"

// QuarantineRecord is an event that is not a valid descriptor, with the reason.
type QuarantineRecord struct {
	Keys
	Time   time.Time `json:"Time"`
	Reason string    `json:"Reason"`
	Body   string    `json:"Body"`
}

// What a quarantine row keeps of an event: enough to see what it was, far within a Table property
// (64 KiB), so that storing it never fails on its size — a forged event must cost one row, never the
// batch that carried it.
const (
	maxQuarantinedBody   = 4 << 10
	maxQuarantinedReason = 1 << 10
)

func quarantinedBody(b []byte) string { return Truncate(string(b), maxQuarantinedBody) }

// Truncate cuts s to at most n bytes, saying how long it was (for what reaches a row, an error or a log).
func Truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return fmt.Sprintf("%s... (%d bytes in all)", s[:n], len(s))
}

// quarantine stores a quarantine row (and, when index names a hub partition, its index row). A failure
// is logged, never returned: the events beside it, other groups' among them, must still be applied.
func (a *Applier) quarantine(ctx context.Context, row QuarantineRecord, index string) {
	_, err := a.State.Upsert(ctx, QuarantineTable, row)
	if err == nil && index != "" {
		_, err = a.State.Upsert(ctx, QuarantineTable, Keys{PartitionKey: quarantinePartitionsKey, RowKey: index})
	}
	if err != nil {
		a.Log.Error("an event could not be quarantined; it is dropped", "quarantine", row.PartitionKey, "row", row.RowKey, "err", err)
	}
}

// StreamEvent is one event of a change-stream batch: its body and its sequence number in the partition.
type StreamEvent struct {
	SequenceNumber int64
	Body           []byte
}

// ApplyEvents applies one batch of a change-stream partition: events that are not valid descriptors
// are quarantined in Table storage with the reason (nothing invalid is applied), the rest are applied
// in order. It returns a line per group, and per quarantined event.
func (a *Applier) ApplyEvents(ctx context.Context, partition string, events []StreamEvent) ([]string, error) {
	if a.State == nil || a.Pages == nil || a.Journal == nil {
		return nil, fmt.Errorf("apply: target storage or the cache journal is not configured (StandbyTargetStorage, StandbyCacheStorage): %w", ErrNotConfigured)
	}
	var descs []Descriptor
	var logs []string
	for _, ev := range events {
		d, err := DecodeDescriptor(ev.Body)
		if err != nil {
			row := QuarantineRecord{Keys: Keys{PartitionKey: "partition-" + partition, RowKey: SeqKey(ev.SequenceNumber)},
				Time: a.Now().UTC(), Reason: Truncate(err.Error(), maxQuarantinedReason), Body: quarantinedBody(ev.Body)}
			a.quarantine(ctx, row, row.PartitionKey) // housekeeping finds the partition's quarantine through its index row
			a.Log.Warn("event quarantined", "partition", partition, "hubSeq", ev.SequenceNumber, "err", err)
			logs = append(logs, fmt.Sprintf("quarantined event %d: %v", ev.SequenceNumber, err))
			continue
		}
		descs = append(descs, d)
	}
	if len(descs) == 0 {
		return logs, nil
	}
	start := time.Now()
	results, err := a.Apply(ctx, descs)
	for _, r := range results {
		line := fmt.Sprintf("group %s: applied %d..%d (%d bytes, %d markers) in %dms", r.Group, r.From, r.To, r.Bytes, r.Markers, time.Since(start).Milliseconds())
		if r.From > r.To {
			line = fmt.Sprintf("group %s: nothing new (watermark %d)", r.Group, r.To)
		}
		if r.Stopped != "" {
			line += "; stopped: " + r.Stopped
		}
		logs = append(logs, line)
	}
	return logs, err
}
