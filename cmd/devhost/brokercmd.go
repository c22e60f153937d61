package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"github.com/standby-dr/standby/shared/azure/azconn"
	"os"
	"path/filepath"
	"strings"

	"github.com/standby-dr/standby/shared/standin/broker"
)

// The broker commands (publish, send, deadletters) work on the embedded broker of an app without
// running it.

// brokerPath finds the embedded broker file from the app's connection settings.
func brokerPath(appDir, explicit string) (string, error) {
	if explicit != "" {
		return explicit, nil
	}
	data, err := os.ReadFile(filepath.Join(appDir, "local.settings.json"))
	if err != nil {
		return "", fmt.Errorf("no -broker given and no local.settings.json: %w", err)
	}
	var ls struct{ Values map[string]string }
	if err := json.Unmarshal(data, &ls); err != nil {
		return "", fmt.Errorf("local.settings.json: %w", err)
	}
	for _, name := range []string{"StandbyEventHubs", "StandbyServiceBus"} {
		if v := ls.Values[name]; azconn.IsEmbeddedBroker(v) {
			p, err := azconn.BrokerPath(v)
			if err != nil {
				return "", err
			}
			if !filepath.IsAbs(p) {
				p = filepath.Join(appDir, p)
			}
			return p, nil
		}
	}
	return "", errors.New("local.settings.json names no embedded broker connection")
}

// publish publishes body as one event, or each non-empty stdin line as one when body is empty.
func publish(ctx context.Context, br *broker.Broker, hub, key, body string) error {
	var events []broker.Event
	if body != "" {
		events = append(events, broker.Event{Body: []byte(body)})
	} else {
		sc := bufio.NewScanner(os.Stdin)
		sc.Buffer(make([]byte, 1<<20), broker.MaxEventBytes+1)
		for sc.Scan() {
			if line := strings.TrimSpace(sc.Text()); line != "" {
				events = append(events, broker.Event{Body: []byte(line)})
			}
		}
	}
	stored, err := br.Publish(ctx, hub, key, events)
	if err != nil {
		return err
	}
	for _, e := range stored {
		fmt.Printf("published to %s partition %d sequence %d\n", hub, e.Partition, e.SequenceNumber)
	}
	return nil
}

// send sends one queue message.
func send(ctx context.Context, br *broker.Broker, queue, session, id, body string) error {
	if body == "" {
		return errors.New("send needs -body")
	}
	if err := br.Send(ctx, queue, broker.Message{MessageID: id, SessionID: session, Body: []byte(body)}); err != nil {
		return err
	}
	fmt.Printf("sent to %s (session %q)\n", queue, session)
	return nil
}

// deadletters lists a queue's dead-letter queue.
func deadletters(ctx context.Context, br *broker.Broker, queue string) error {
	msgs, err := br.DeadLetters(ctx, queue, 1000)
	if err != nil {
		return err
	}
	for _, m := range msgs {
		fmt.Printf("%d\t%s\tsession=%s\tdeliveries=%d\t%s: %s\t%s\n", m.SequenceNumber, m.MessageID, m.SessionID, m.DeliveryCount, m.DeadLetterReason, m.DeadLetterDescription, m.Body)
	}
	fmt.Printf("%d dead-lettered message(s) in %s\n", len(msgs), queue)
	return nil
}
