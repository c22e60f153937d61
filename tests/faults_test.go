package tests

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/standby-dr/standby/shared/standin/broker"
)

const eventsFunction = `{
  "bindings": [{"type": "eventHubTrigger", "direction": "in", "name": "events", "eventHubName": "changes",
    "connection": "StandbyEventHubs", "consumerGroup": "apply", "cardinality": "many", "dataType": "string"}],
  "retry": {"strategy": "fixedDelay", "maxRetryCount": 3, "delayInterval": "00:00:01"}
}`

const jobsFunction = `{
  "bindings": [{"type": "serviceBusTrigger", "direction": "in", "name": "job", "queueName": "jobs",
    "connection": "StandbyServiceBus", "isSessionsEnabled": true, "autoCompleteMessages": true}]
}`

var faultBroker = broker.Config{
	EventHubs: []broker.HubConfig{{Name: "changes", PartitionCount: 2}},
	Queues:    []broker.QueueConfig{{Name: "jobs", RequiresSession: true, LockDurationSeconds: 5, MaxDeliveryCount: 3}},
}

// Killing the handler (kill -9) during an Event Hubs invocation: devhost restarts it and, under the
// function's retry policy, invokes the same batch again (RetryContext.RetryCount 1) on the new process;
// the checkpoint then moves past the batch, so the next event is delivered once.
func TestKillHandlerDuringEventHubsInvocation(t *testing.T) {
	app := newApp(t, appSpec{handler: "testhandler", functions: map[string]string{"events": eventsFunction}, broker: faultBroker})
	control := t.TempDir()
	os.WriteFile(filepath.Join(control, "hang-once"), nil, 0o644)
	app.start(t, "TESTHANDLER_DIR="+control)
	br := app.broker(t)
	ctx := context.Background()
	stored, err := br.Publish(ctx, "changes", "g1", []broker.Event{{Body: []byte("a")}, {Body: []byte("b")}})
	if err != nil {
		t.Fatal(err)
	}
	partition := stored[0].Partition

	waitFor(t, 20*time.Second, "the first invocation to start", func() bool { return len(readInvocations(t, control)) >= 1 })
	first := readInvocations(t, control)[0]
	if fmt.Sprint(first.Seqs) != "[0 1]" || first.RetryCount != 0 {
		t.Fatalf("first invocation = %+v", first)
	}
	if err := syscall.Kill(first.PID, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 30*time.Second, "the batch to be retried on a restarted handler and finish", func() bool {
		for _, inv := range readInvocations(t, control) {
			if inv.Phase == "end" && fmt.Sprint(inv.Seqs) == "[0 1]" {
				return true
			}
		}
		return false
	})
	var retried invocation
	for _, inv := range readInvocations(t, control) {
		if inv.Phase == "end" {
			retried = inv
		}
	}
	if retried.PID == first.PID || retried.RetryCount < 1 {
		t.Fatalf("retried invocation %+v: want a new process and RetryCount >= 1 (first pid %d)", retried, first.PID)
	}
	waitFor(t, 10*time.Second, "the checkpoint to pass the batch", func() bool {
		seq, ok, _ := br.LoadCheckpoint(ctx, "changes", "apply", partition)
		return ok && seq == 1
	})
	if _, err := br.Publish(ctx, "changes", "g1", []broker.Event{{Body: []byte("c")}}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 10*time.Second, "the next event", func() bool {
		invs := readInvocations(t, control)
		return fmt.Sprint(invs[len(invs)-1].Seqs) == "[2]" && invs[len(invs)-1].Phase == "end"
	})
	for _, inv := range readInvocations(t, control) {
		if inv.Phase == "start" && fmt.Sprint(inv.Seqs) == "[2]" && inv.RetryCount != 0 {
			t.Fatalf("event 2 was retried: %+v", inv)
		}
	}
}

// Stopping devhost in the middle of a batch leaves it unchekpointed: the next devhost delivers it again.
func TestDevhostStoppedMidBatchRedelivers(t *testing.T) {
	app := newApp(t, appSpec{handler: "testhandler", functions: map[string]string{"events": eventsFunction}, broker: faultBroker})
	control := t.TempDir()
	os.WriteFile(filepath.Join(control, "hang-once"), nil, 0o644)
	app.start(t, "TESTHANDLER_DIR="+control)
	br := app.broker(t)
	if _, err := br.Publish(context.Background(), "changes", "g2", []broker.Event{{Body: []byte("x")}}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 20*time.Second, "the invocation to start", func() bool { return len(readInvocations(t, control)) >= 1 })
	app.cmd.Process.Signal(syscall.SIGKILL) // the host itself dies
	<-app.done
	app.cmd = nil
	syscall.Kill(readInvocations(t, control)[0].PID, syscall.SIGKILL)
	app.start(t, "TESTHANDLER_DIR="+control)
	waitFor(t, 20*time.Second, "the batch to be delivered again", func() bool {
		for _, inv := range readInvocations(t, control) {
			if inv.Phase == "end" && fmt.Sprint(inv.Seqs) == "[0]" && inv.RetryCount == 0 {
				return true
			}
		}
		return false
	})
}

// A handler that answers 500 for a Service Bus message: devhost abandons it, the queue redelivers it
// with DeliveryCount+1, and after MaxDeliveryCount (3 here) it is dead-lettered with the reason.
func TestServiceBusFailureRedeliversThenDeadLetters(t *testing.T) {
	app := newApp(t, appSpec{handler: "testhandler", functions: map[string]string{"jobs": jobsFunction}, broker: faultBroker})
	control := t.TempDir()
	app.start(t, "TESTHANDLER_DIR="+control)
	br := app.broker(t)
	if err := br.Send(context.Background(), "jobs", broker.Message{MessageID: "job-1-step-1", SessionID: "g1", Body: []byte(`{"step":1}`)}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 30*time.Second, "the message to be dead-lettered", func() bool {
		dls, _ := br.DeadLetters(context.Background(), "jobs", 10)
		return len(dls) == 1
	})
	var deliveries []int64
	for _, inv := range readInvocations(t, control) {
		if inv.MessageID == "job-1-step-1" {
			deliveries = append(deliveries, inv.DeliveryCount)
		}
	}
	if fmt.Sprint(deliveries) != "[1 2 3]" {
		t.Fatalf("deliveries = %v, want [1 2 3]", deliveries)
	}
	dls, _ := br.DeadLetters(context.Background(), "jobs", 10)
	if dls[0].MessageID != "job-1-step-1" || dls[0].DeadLetterReason != "MaxDeliveryCountExceeded" ||
		dls[0].DeadLetterDescription != "Message could not be consumed after 3 delivery attempts." {
		t.Fatalf("dead letter = %+v", dls[0])
	}
	// The operator's view: devhost deadletters lists it with the reason.
	out, err := execOutput(binDir+"/devhost", "deadletters", "-broker", app.brokerPath, "-queue", "jobs")
	if err != nil || !strings.Contains(out, "job-1-step-1") || !strings.Contains(out, "MaxDeliveryCountExceeded") {
		t.Fatalf("devhost deadletters: %v\n%s", err, out)
	}
}

// Without request forwarding, devhost sends the request as Data.req, answers from Outputs.res, and
// publishes the serviceBus output binding's values to the queue.
func TestHTTPWithoutForwardingAndOutputBindings(t *testing.T) {
	echo := `{"bindings": [
	  {"type": "httpTrigger", "direction": "in", "name": "req", "authLevel": "anonymous", "route": "echo/{name}", "methods": ["post"]},
	  {"type": "http", "direction": "out", "name": "res"},
	  {"type": "serviceBus", "direction": "out", "name": "outbox", "queueName": "outbox", "connection": "StandbyServiceBus"}]}`
	app := newApp(t, appSpec{handler: "testhandler", functions: map[string]string{"echo": echo}, noForwarding: true,
		broker: broker.Config{Queues: []broker.QueueConfig{{Name: "outbox"}}}})
	app.start(t, "TESTHANDLER_DIR="+t.TempDir())
	status, header, body := app.call(t, "POST", "/api/echo/alice", "", "hello")
	if status != 201 || body != "POST alice hello" || header.Get("X-Echo") != "yes" {
		t.Fatalf("echo: %d %q %v", status, body, header)
	}
	if status, _, _ := app.call(t, "GET", "/api/echo/alice", "", ""); status != 405 {
		t.Fatalf("GET on a POST-only function: %d, want 405", status)
	}
	br := app.broker(t)
	msgs, err := br.Receive(context.Background(), "outbox", 10, 5*time.Second)
	if err != nil || len(msgs) != 2 || string(msgs[0].Body) != `{"echoed":"hello"}` || string(msgs[1].Body) != "second" {
		t.Fatalf("outbox: %v %+v", err, msgs)
	}
}

// An invocation that outlives functionTimeout makes devhost restart the handler, as the host does: every
// invocation in flight fails with it, of every function, and each trigger's own rules bring its work
// back — the Event Hubs batch under its retry policy, the Service Bus message by abandon and
// redelivery. Nothing is lost.
func TestFunctionTimeoutRestartsTheHandlerAndNothingIsLost(t *testing.T) {
	app := newApp(t, appSpec{handler: "testhandler", functions: map[string]string{"events": eventsFunction, "jobs": jobsFunction},
		broker: faultBroker, functionTimeout: "00:00:03"})
	control := t.TempDir()
	for _, f := range []string{"hang-once", "jobs-ok", "jobs-sleep-once"} {
		os.WriteFile(filepath.Join(control, f), nil, 0o644)
	}
	app.start(t, "TESTHANDLER_DIR="+control)
	br := app.broker(t)
	ctx := context.Background()
	if err := br.Send(ctx, "jobs", broker.Message{MessageID: "step-1", SessionID: "g1", Body: []byte(`{"step":1}`)}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 20*time.Second, "the job message to be in flight", func() bool { return len(readInvocations(t, control)) >= 1 })
	if _, err := br.Publish(ctx, "changes", "g1", []broker.Event{{Body: []byte("a")}}); err != nil {
		t.Fatal(err)
	}
	var eventsDone, jobDone []invocation
	waitFor(t, 60*time.Second, "both to be done after the restart", func() bool {
		eventsDone, jobDone = nil, nil
		for _, inv := range readInvocations(t, control) {
			switch {
			case inv.Function == "events" && inv.Phase == "end":
				eventsDone = append(eventsDone, inv)
			case inv.Function == "jobs" && inv.Phase == "end":
				jobDone = append(jobDone, inv)
			}
		}
		return len(eventsDone) == 1 && len(jobDone) == 1
	})
	first := readInvocations(t, control)[0].PID
	if eventsDone[0].PID == first || jobDone[0].PID == first {
		t.Errorf("the work finished on the first handler (pid %d): it was not restarted", first)
	}
	if eventsDone[0].RetryCount < 1 || jobDone[0].DeliveryCount < 2 {
		t.Errorf("events retry %d, job delivery %d: each should have come back by its trigger's rule", eventsDone[0].RetryCount, jobDone[0].DeliveryCount)
	}
	if dls, _ := br.DeadLetters(ctx, "jobs", 10); len(dls) != 0 {
		t.Errorf("dead letters: %+v", dls)
	}
	if !strings.Contains(app.out.String(), "outlived functionTimeout") {
		t.Errorf("devhost did not say why it restarted the handler:\n%s", app.out.String())
	}
}
