// Package apply is the Event Hubs-triggered function that applies the change stream to the target
// region. In this foundation it records each descriptor it receives and advances the group's watermark
// (ETag-guarded) in Table storage; writing pages comes with continuous replication.
package apply

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/standby-dr/standby/shared/funcproto"
	"github.com/standby-dr/standby/shared/replication"
)

// Binding is the trigger's name in function.json.
const Binding = "events"

// Table names.
const (
	DescriptorsTable = "descriptors"
	WatermarksTable  = "watermarks"
	QuarantineTable  = "quarantine"
)

// DescriptorRecord is a received descriptor: partition = group, row = sequence.
type DescriptorRecord struct {
	replication.Keys
	Kind         string    `json:"Kind"`
	Bytes        int64     `json:"Bytes"`
	SourceTime   time.Time `json:"SourceTime"`
	Partition    string    `json:"Partition"`
	HubSequence  int64     `json:"HubSequence"`
	EnqueuedTime time.Time `json:"EnqueuedTime"`
	ReceivedAt   time.Time `json:"ReceivedAt"`
}

// Watermark is the group's progress: the highest sequence received and how many descriptors.
type Watermark struct {
	replication.Keys
	Sequence    int64     `json:"Sequence"`
	Descriptors int64     `json:"Descriptors"`
	SourceTime  time.Time `json:"SourceTime"`
	UpdatedAt   time.Time `json:"UpdatedAt"`
}

// WatermarkRow is the row key of a group's watermark.
const WatermarkRow = "watermark"

// QuarantineRecord keeps an event that is not a valid descriptor, with the reason, so nothing is lost
// silently and nothing invalid is applied.
type QuarantineRecord struct {
	replication.Keys
	Reason string `json:"Reason"`
	Body   string `json:"Body"`
}

// Function is the apply function.
type Function struct {
	State replication.StateStore
	Log   *slog.Logger
	Now   func() time.Time
}

// Invoke handles one Event Hubs batch. Every step is idempotent: the host redelivers a batch after a
// crash, and checkpoints it even when the function fails.
func (f *Function) Invoke(ctx context.Context, req *funcproto.InvokeRequest) (*funcproto.InvokeResponse, error) {
	batch, err := funcproto.DecodeEventHubBatch(req, Binding)
	if err != nil {
		return nil, &funcproto.BadInput{Reason: err.Error()}
	}
	if f.State == nil {
		return nil, errors.New("apply: target state store is not configured (StandbyTargetStorage)")
	}
	now := f.Now().UTC()
	latest := map[string]replication.Descriptor{}
	counts := map[string]int64{}
	var logs []string
	for _, ev := range batch.Events {
		d, err := replication.DecodeDescriptor(ev.Body)
		if err != nil {
			row := QuarantineRecord{Keys: replication.Keys{PartitionKey: "partition-" + batch.Partition.PartitionID,
				RowKey: replication.SeqKey(ev.SequenceNumber)}, Reason: err.Error(), Body: truncate(string(ev.Body), 16<<10)}
			if _, qerr := f.State.Upsert(ctx, QuarantineTable, row); qerr != nil {
				return nil, fmt.Errorf("quarantining event %d: %w", ev.SequenceNumber, qerr)
			}
			f.Log.Warn("event quarantined", "partition", batch.Partition.PartitionID, "hubSeq", ev.SequenceNumber, "err", err)
			logs = append(logs, fmt.Sprintf("quarantined event %d: %v", ev.SequenceNumber, err))
			continue
		}
		rec := DescriptorRecord{Keys: replication.Keys{PartitionKey: d.Group, RowKey: replication.SeqKey(d.Seq)},
			Kind: d.Kind, Bytes: d.Bytes, SourceTime: d.SourceTime, Partition: batch.Partition.PartitionID,
			HubSequence: ev.SequenceNumber, EnqueuedTime: ev.EnqueuedTime, ReceivedAt: now}
		// Insert, not upsert: a redelivered descriptor keeps its first record and does not count twice.
		if _, err := f.State.Insert(ctx, DescriptorsTable, rec); err != nil {
			if errors.Is(err, replication.ErrConflict) {
				f.Log.Debug("duplicate descriptor skipped", "group", d.Group, "seq", d.Seq)
				continue
			}
			return nil, fmt.Errorf("recording descriptor %s/%d: %w", d.Group, d.Seq, err)
		}
		counts[d.Group]++
		if d.Seq > latest[d.Group].Seq {
			latest[d.Group] = d
		}
		f.Log.Info("descriptor received", "group", d.Group, "seq", d.Seq, "kind", d.Kind)
	}
	for group, d := range latest {
		if err := f.advance(ctx, group, d, counts[group], now); err != nil {
			return nil, err
		}
		logs = append(logs, fmt.Sprintf("group %s: watermark %d", group, d.Seq))
	}
	return &funcproto.InvokeResponse{Logs: logs}, nil
}

// advance raises the group's watermark with an ETag-guarded update (retried when another instance
// changed it in between).
func (f *Function) advance(ctx context.Context, group string, d replication.Descriptor, added int64, now time.Time) error {
	wm, err := replication.Mutate(ctx, f.State, WatermarksTable, group, WatermarkRow, func(wm *Watermark, found bool) error {
		if !found {
			wm.Keys = replication.Keys{PartitionKey: group, RowKey: WatermarkRow}
		}
		wm.Descriptors += added
		if d.Seq > wm.Sequence {
			wm.Sequence, wm.SourceTime = d.Seq, d.SourceTime
		}
		wm.UpdatedAt = now
		return nil
	})
	if err != nil {
		return fmt.Errorf("updating the watermark of %s: %w", group, err)
	}
	f.Log.Info("watermark advanced", "group", group, "seq", wm.Sequence)
	return nil
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n]
}
