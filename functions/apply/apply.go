// Package apply is the Event Hubs-triggered function that applies each consistency group's change
// stream to its target page blobs, in sequence order, snapshotting every disk of the group at each
// marker (replication.Applier does the work). Events that are not valid descriptors are quarantined
// in Table storage with the reason; nothing invalid is applied.
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

// QuarantineTable keeps events that are not valid descriptors.
const QuarantineTable = "quarantine"

// QuarantineRecord is an event that is not a valid descriptor, with the reason.
type QuarantineRecord struct {
	replication.Keys
	Reason string `json:"Reason"`
	Body   string `json:"Body"`
}

// Function is the apply function.
type Function struct {
	Applier *replication.Applier // nil when storage is not configured
	State   replication.StateStore
	Log     *slog.Logger
}

// Invoke handles one Event Hubs batch. A failure returns 500: the host retries the batch per the
// function's retry policy, and when it gives up, the next batch's gap repair reads what was missed
// from the journal.
func (f *Function) Invoke(ctx context.Context, req *funcproto.InvokeRequest) (*funcproto.InvokeResponse, error) {
	batch, err := funcproto.DecodeEventHubBatch(req, Binding)
	if err != nil {
		return nil, &funcproto.BadInput{Reason: err.Error()}
	}
	if f.Applier == nil || f.State == nil {
		return nil, errors.New("apply: target storage or the cache journal is not configured (StandbyTargetStorage, StandbyCacheStorage)")
	}
	var descs []replication.Descriptor
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
		descs = append(descs, d)
	}
	if len(descs) == 0 {
		return &funcproto.InvokeResponse{Logs: logs}, nil
	}
	start := time.Now()
	results, err := f.Applier.Apply(ctx, descs)
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
	if err != nil {
		return nil, err
	}
	return &funcproto.InvokeResponse{Logs: logs}, nil
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n]
}
