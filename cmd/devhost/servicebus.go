package main

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/standby-dr/standby/shared/protocol/funcproto"
	"github.com/standby-dr/standby/shared/standin/broker"
)

// The Service Bus trigger: queue receivers (session receivers when isSessionsEnabled) from the embedded
// broker, maxConcurrentSessions of them, peek-lock with auto lock renewal, complete or abandon.

func validateServiceBus(fn *Function, b *Binding, at string) error {
	if b.QueueName == "" {
		return errField(fn.File, at+".queueName", "missing (topics are not supported locally)")
	}
	if b.Connection == "" {
		return errField(fn.File, at+".connection", "missing")
	}
	if b.AutoComplete != nil { // the real host would silently ignore it, and complete messages anyway
		return errField(fn.File, at+".autoComplete", "not a property of the Service Bus extension v5, which ignores it: use autoCompleteMessages")
	}
	return nil
}

// autoComplete says whether a message is completed after a successful invocation: the function's
// autoCompleteMessages, else host.json's extensions.serviceBus.autoCompleteMessages, else true
// (ServiceBusOptions.AutoCompleteMessages default: Azure/azure-sdk-for-net
// sdk/servicebus/Microsoft.Azure.WebJobs.Extensions.ServiceBus/src/Config/ServiceBusOptions.cs:65-69).
func (h *Host) autoComplete(b *Binding) bool {
	if b.AutoCompleteMessages != nil {
		return *b.AutoCompleteMessages
	}
	if v := h.App.Host.Extensions.ServiceBus.AutoCompleteMessages; v != nil {
		return *v
	}
	return true
}

func (h *Host) describeServiceBus(fn *Function) string {
	t := fn.Trigger
	return fmt.Sprintf("queue %s, sessions %v, %d concurrent sessions", t.QueueName, t.IsSessionsEnabled, h.App.Host.Extensions.ServiceBus.MaxConcurrentSessions)
}

// startServiceBus checks the queue against the binding and starts maxConcurrentSessions receivers.
func (h *Host) startServiceBus(ctx context.Context, wg *sync.WaitGroup, fn *Function) error {
	br, err := h.broker(fn.Trigger.Connection)
	if err != nil {
		return fmt.Errorf("%s: %w", fn.File, err)
	}
	lock, sessions, err := br.LockDuration(ctx, fn.Trigger.QueueName)
	if err != nil {
		return fmt.Errorf("%s: queue %s: %w (declare it in the broker config)", fn.File, fn.Trigger.QueueName, err)
	}
	if sessions != fn.Trigger.IsSessionsEnabled {
		return fmt.Errorf("%s: isSessionsEnabled is %v but queue %s has requiresSession %v", fn.File, fn.Trigger.IsSessionsEnabled, fn.Trigger.QueueName, sessions)
	}
	workers := h.App.Host.Extensions.ServiceBus.MaxConcurrentSessions
	for i := 0; i < workers; i++ {
		wg.Add(1)
		go func() { defer wg.Done(); h.runQueueWorker(ctx, fn, br, lock) }()
	}
	return nil
}

// runQueueWorker receives from the queue (one session at a time when sessions are on), invokes the
// function per message, completes on 2xx and abandons otherwise; locks are renewed during the call.
func (h *Host) runQueueWorker(ctx context.Context, fn *Function, br *broker.Broker, lock time.Duration) {
	t := fn.Trigger
	log := h.Log.With("function", fn.Name)
	for ctx.Err() == nil {
		if !t.IsSessionsEnabled {
			msgs, err := br.Receive(ctx, t.QueueName, 1, time.Second)
			if err != nil {
				if ctx.Err() == nil {
					log.Error("receiving", "err", err)
					time.Sleep(time.Second)
				}
				continue
			}
			for _, m := range msgs {
				h.handleMessage(ctx, fn, br, lock, m, nil)
			}
			continue
		}
		sess, err := br.AcceptNextSession(ctx, t.QueueName, time.Second)
		if errors.Is(err, broker.ErrNoSession) || ctx.Err() != nil {
			continue
		}
		if err != nil {
			log.Error("accepting a session", "err", err)
			time.Sleep(time.Second)
			continue
		}
		for ctx.Err() == nil {
			msgs, err := sess.Receive(ctx, 1, h.App.Host.sessionIdle)
			if err != nil || len(msgs) == 0 {
				break // idle or lock lost: release the session for any worker
			}
			h.handleMessage(ctx, fn, br, lock, msgs[0], sess.Renew)
		}
		sess.Close(context.Background())
	}
}

// handleMessage invokes the function with one message, renewing its lock (and its session's) during the
// call, then completes it on 2xx (when autoCompleteMessages) and abandons it otherwise: the extension
// rethrows a failed invocation's exception and the processor abandons the unsettled message
// (…/src/Primitives/MessageProcessor.cs:64-87 of the extension).
func (h *Host) handleMessage(ctx context.Context, fn *Function, br *broker.Broker, lock time.Duration, m broker.ReceivedMessage, renewSession func(context.Context) error) {
	t := fn.Trigger
	log := h.Log.With("function", fn.Name)
	callCtx, stopRenew := context.WithCancel(ctx)
	go func() { // auto lock renewal, bounded by maxAutoLockRenewalDuration
		deadline := time.Now().Add(h.App.Host.lockRenewal)
		for time.Now().Before(deadline) {
			select {
			case <-callCtx.Done():
				return
			case <-time.After(lock / 3):
			}
			br.RenewMessageLock(ctx, t.QueueName, m.LockToken)
			if renewSession != nil {
				renewSession(ctx)
			}
		}
	}()
	status, _, err := h.invoke(ctx, fn, serviceBusPayload(fn.Name, t.Name, m, time.Now()))
	stopRenew()
	if ctx.Err() != nil {
		return // stopping: the lock expires and the message is redelivered
	}
	if err == nil && status/100 == 2 {
		if h.autoComplete(t) {
			if err := br.Complete(ctx, t.QueueName, m.LockToken); err != nil {
				log.Error("completing message", "messageId", m.MessageID, "err", err)
			}
		}
		return
	}
	log.Warn("message failed; abandoning", "messageId", m.MessageID, "delivery", m.DeliveryCount, "status", status, "err", err)
	if err := br.Abandon(ctx, t.QueueName, m.LockToken); err != nil {
		log.Error("abandoning message", "messageId", m.MessageID, "err", err)
	}
}

// serviceBusPayload is the invocation of a message received from the broker (the wire shape is
// funcproto's). The broker keeps no expiry: ExpiresAtUtc is set 14 days after enqueueing.
func serviceBusPayload(function, binding string, m broker.ReceivedMessage, now time.Time) *funcproto.InvokeRequest {
	props := map[string]any{}
	for k, v := range m.Properties {
		props[k] = v
	}
	return funcproto.NewServiceBusRequest(function, binding, &funcproto.ServiceBusMessage{
		Body: m.Body, MessageID: m.MessageID, SessionID: m.SessionID, DeliveryCount: int64(m.DeliveryCount), EnqueuedTime: m.EnqueuedTime,
		ApplicationProperties: props, SequenceNumber: m.SequenceNumber, LockToken: m.LockToken, SessionLockedUntil: m.LockedUntil,
		ExpiresAt: m.EnqueuedTime.Add(14 * 24 * time.Hour), Namespace: "localhost",
	}, now)
}
