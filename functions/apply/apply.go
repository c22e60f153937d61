// Package apply is the Event Hubs-triggered function that applies each consistency group's change
// stream to its target page blobs, in sequence order, snapshotting every disk of the group at each
// marker (replication.Applier does the work, and quarantines events that are not valid descriptors).
package apply

import (
	"context"

	"github.com/standby-dr/standby/shared/protocol/funcproto"
	"github.com/standby-dr/standby/shared/replication"
)

// Binding is the trigger's name in function.json.
const Binding = "events"

// Function is the apply function.
type Function struct {
	Applier *replication.Applier
}

// Invoke handles one Event Hubs batch. A failure returns 500: the host retries the batch per the
// function's retry policy, and when it gives up, the next batch's gap repair reads what was missed
// from the journal.
func (f *Function) Invoke(ctx context.Context, req *funcproto.InvokeRequest) (*funcproto.InvokeResponse, error) {
	batch, err := funcproto.DecodeEventHubBatch(req, Binding)
	if err != nil {
		return nil, &funcproto.BadInput{Reason: err.Error()}
	}
	events := make([]replication.StreamEvent, len(batch.Events))
	for i, ev := range batch.Events {
		events[i] = replication.StreamEvent{SequenceNumber: ev.SequenceNumber, Body: ev.Body}
	}
	logs, err := f.Applier.ApplyEvents(ctx, batch.Partition.PartitionID, events)
	if err != nil {
		return nil, err
	}
	return &funcproto.InvokeResponse{Logs: logs}, nil
}
