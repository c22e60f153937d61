package main

import (
	"context"
	"fmt"
	"strconv"
	"sync"
	"time"

	"github.com/standby-dr/standby/shared/protocol/funcproto"
	"github.com/standby-dr/standby/shared/standin/broker"
)

// The Event Hubs trigger: a consumer per partition from the embedded broker, batches per
// host.json extensions.eventHubs, the function.json retry policy, checkpoints in the broker.

func validateEventHub(fn *Function, b *Binding, at string) error {
	if b.EventHubName == "" {
		return errField(fn.File, at+".eventHubName", "missing")
	}
	if b.Connection == "" {
		return errField(fn.File, at+".connection", "missing")
	}
	if b.ConsumerGroup == "" {
		b.ConsumerGroup = "$Default"
	}
	if b.Cardinality == "" {
		b.Cardinality = "one"
	}
	if b.Cardinality != "one" && b.Cardinality != "many" {
		return errField(fn.File, at+".cardinality", "%q, want one or many", b.Cardinality)
	}
	return nil
}

func (h *Host) describeEventHub(fn *Function) string {
	t := fn.Trigger
	src := fmt.Sprintf("hub %s, consumer group %s, cardinality %s, batch <= %d", t.EventHubName, t.ConsumerGroup, t.Cardinality, h.App.Host.Extensions.EventHubs.MaxEventBatchSize)
	if fn.Retry != nil {
		src += fmt.Sprintf(", retry %s x%d", fn.Retry.Strategy, fn.Retry.MaxRetryCount)
	}
	return src
}

// startEventHub starts a consumer per partition of the function's hub and the hub's retention pruning.
func (h *Host) startEventHub(ctx context.Context, wg *sync.WaitGroup, fn *Function) error {
	br, err := h.broker(fn.Trigger.Connection)
	if err != nil {
		return fmt.Errorf("%s: %w", fn.File, err)
	}
	n, err := br.PartitionCount(ctx, fn.Trigger.EventHubName)
	if err != nil {
		return fmt.Errorf("%s: event hub %s: %w (declare it in the broker config)", fn.File, fn.Trigger.EventHubName, err)
	}
	for p := 0; p < n; p++ {
		wg.Add(1)
		go func() { defer wg.Done(); h.runPartition(ctx, fn, br, p) }()
	}
	wg.Add(1)
	go func() { defer wg.Done(); h.pruneRetention(ctx, br, fn.Trigger.EventHubName) }()
	return nil
}

// pruneRetention drops events past the hub's retention, as Event Hubs does, once a minute.
func (h *Host) pruneRetention(ctx context.Context, br *broker.Broker, hub string) {
	for {
		if n, err := br.PruneEvents(ctx, hub); err != nil && ctx.Err() == nil {
			h.Log.Warn("pruning events", "hub", hub, "err", err)
		} else if n > 0 {
			h.Log.Info("events past retention pruned", "hub", hub, "count", n)
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(time.Minute):
		}
	}
}

// runPartition consumes one partition in order, like the Event Hubs extension: a batch of up to
// maxEventBatchSize events per invocation, checkpointed after the invocation whatever its outcome once
// the function.json retry policy (if any) is exhausted. Only a host that stops mid-batch redelivers it.
func (h *Host) runPartition(ctx context.Context, fn *Function, br *broker.Broker, partition int) {
	t := fn.Trigger
	maxBatch := h.App.Host.Extensions.EventHubs.MaxEventBatchSize
	if t.Cardinality == "one" {
		maxBatch = 1
	}
	freq := h.App.Host.Extensions.EventHubs.BatchCheckpointFrequency
	log := h.Log.With("function", fn.Name, "partition", partition)
	after, _, err := br.LoadCheckpoint(ctx, t.EventHubName, t.ConsumerGroup, partition)
	if err != nil {
		log.Error("reading checkpoint", "err", err)
		return
	}
	batches := 0
	for ctx.Err() == nil {
		events, err := br.ReadEvents(ctx, t.EventHubName, partition, after, maxBatch, time.Second)
		if err != nil {
			if ctx.Err() == nil {
				log.Error("reading events", "err", err)
				time.Sleep(time.Second)
			}
			continue
		}
		if len(events) == 0 {
			continue
		}
		if !h.deliverBatch(ctx, fn, partition, events) {
			return // stopping mid-batch: no checkpoint, the batch is redelivered on the next start
		}
		last := events[len(events)-1]
		after = last.SequenceNumber
		batches++
		if batches%freq == 0 {
			if err := br.Checkpoint(ctx, t.EventHubName, t.ConsumerGroup, partition, last.SequenceNumber, last.Offset); err != nil {
				log.Error("checkpointing", "err", err)
			}
		}
	}
}

// deliverBatch invokes the function with one batch, retrying per the function.json policy, and reports
// whether the batch is done with (succeeded, or failed past its retries): false when the host is stopping.
func (h *Host) deliverBatch(ctx context.Context, fn *Function, partition int, events []broker.StoredEvent) bool {
	t := fn.Trigger
	log := h.Log.With("function", fn.Name, "partition", partition)
	status := 0
	for attempt := 0; ; attempt++ {
		var retry *funcproto.RetryContext // on every attempt under a retry policy, the first included
		if fn.Retry != nil {
			retry = funcproto.NewRetryContext(attempt, fn.Retry.MaxRetryCount, status)
		}
		var err error
		status, _, err = h.invoke(ctx, fn, eventHubPayload(fn.Name, t.Name, t, "localhost", partition, events, retry, time.Now()))
		if ctx.Err() != nil {
			return false
		}
		if err == nil && status/100 == 2 {
			return true
		}
		if !fn.Retry.Allows(attempt + 1) {
			log.Warn("batch failed; checkpointing anyway as the Functions host does", "status", status, "err", err,
				"firstSeq", events[0].SequenceNumber, "lastSeq", events[len(events)-1].SequenceNumber)
			return true
		}
		delay := fn.Retry.Delay(attempt + 1)
		log.Warn("batch failed; retrying per policy", "status", status, "err", err, "retry", attempt+1, "delay", delay)
		select {
		case <-ctx.Done():
			return false
		case <-time.After(delay):
		}
	}
}

// eventHubPayload is the invocation of a batch read from the broker (the wire shape is funcproto's).
func eventHubPayload(function, binding string, b *Binding, namespace string, partition int, events []broker.StoredEvent, retry *funcproto.RetryContext, now time.Time) *funcproto.InvokeRequest {
	batch := &funcproto.EventHubBatch{
		Partition: funcproto.PartitionContext{ConsumerGroup: b.ConsumerGroup, EventHubName: b.EventHubName,
			FullyQualifiedNamespace: namespace, PartitionID: strconv.Itoa(partition)},
		Events: make([]funcproto.EventHubEvent, len(events)),
	}
	for i, e := range events {
		var props map[string]any
		if e.Properties != nil {
			props = make(map[string]any, len(e.Properties))
			for k, v := range e.Properties {
				props[k] = v
			}
		}
		batch.Events[i] = funcproto.EventHubEvent{Body: e.Body, SequenceNumber: e.SequenceNumber, Offset: strconv.FormatInt(e.Offset, 10),
			EnqueuedTime: e.EnqueuedTime, PartitionKey: e.PartitionKey, Properties: props}
	}
	batch.Retry = retry
	return funcproto.NewEventHubRequest(function, binding, b.Cardinality == "one", batch, now)
}
