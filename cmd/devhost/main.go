// Command devhost plays the Azure Functions host on a machine where Core Tools cannot run: it reads
// host.json, functions/*/function.json and local.settings.json, starts the custom handler, and drives
// timer, Event Hubs and Service Bus triggers from the embedded broker and HTTP triggers on a local port,
// with the payloads and delivery behaviour of the real host.
//
//	devhost [run] [-app DIR] [-broker-config FILE] [-state DIR]   run the app
//	devhost publish -hub NAME -key KEY [-body TEXT]               publish an event (stdin lines when no -body)
//	devhost send -queue NAME [-session ID] [-id ID] -body TEXT    send a queue message
//	devhost deadletters -queue NAME                               list a queue's dead-letter queue
package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"

	"github.com/standby-dr/standby/shared/local"
)

func main() {
	args := os.Args[1:]
	cmd := "run"
	if len(args) > 0 && !strings.HasPrefix(args[0], "-") {
		cmd, args = args[0], args[1:]
	}
	var err error
	switch cmd {
	case "run":
		err = runCmd(args)
	case "publish", "send", "deadletters":
		err = brokerCmd(cmd, args)
	default:
		err = fmt.Errorf("unknown command %q (run, publish, send, deadletters)", cmd)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "devhost:", err)
		os.Exit(1)
	}
}

func runCmd(args []string) error {
	fs := flag.NewFlagSet("run", flag.ContinueOnError)
	appDir := fs.String("app", ".", "the function app's root (host.json)")
	brokerConfig := fs.String("broker-config", "infra/local/broker.json", "entities to declare in the embedded broker (relative to -app)")
	stateDir := fs.String("state", ".local/devhost", "where timer schedule status is kept (relative to -app)")
	port := fs.Int("port", 0, "HTTP port (default: local.settings.json Host.LocalHttpPort, else 7071)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	root, _ := filepath.Abs(*appDir)
	log := slog.New(slog.NewJSONHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelInfo})).With("component", "devhost")
	app, err := LoadApp(root, os.Environ())
	if err != nil {
		return err
	}
	if *port != 0 {
		app.HTTPPort = *port
	}
	cfgPath := *brokerConfig
	if !filepath.IsAbs(cfgPath) {
		cfgPath = filepath.Join(root, cfgPath)
	}
	cfg, err := local.LoadConfig(cfgPath)
	if err != nil {
		return err
	}
	sup, err := NewSupervisor(app, log)
	if err != nil {
		return err
	}
	state := *stateDir
	if !filepath.IsAbs(state) {
		state = filepath.Join(root, state)
	}
	host := NewHost(app, sup, log, state, os.Stdout)
	defer host.Close()
	// Declare the entities in every broker file the app's connections name.
	for _, fn := range app.Functions {
		for _, b := range fn.Bindings {
			if b.Connection == "" {
				continue
			}
			br, err := host.broker(b.Connection)
			if err != nil {
				return fmt.Errorf("%s: %w", fn.File, err)
			}
			if err := br.Apply(context.Background(), cfg); err != nil {
				return fmt.Errorf("%s: %w", cfgPath, err)
			}
		}
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	supDone := make(chan struct{})
	go func() { sup.Run(ctx); close(supDone) }()
	err = host.Run(ctx, nil)
	stop()
	<-supDone
	return err
}

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
		if v := ls.Values[name]; local.IsConnection(v) {
			p, err := local.PathFromConnection(v)
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

func brokerCmd(cmd string, args []string) error {
	fs := flag.NewFlagSet(cmd, flag.ContinueOnError)
	appDir := fs.String("app", ".", "the function app's root")
	path := fs.String("broker", "", "broker file (default: from local.settings.json)")
	hub := fs.String("hub", "changes", "event hub (publish)")
	key := fs.String("key", "", "partition key (publish)")
	queue := fs.String("queue", "jobs", "queue (send, deadletters)")
	session := fs.String("session", "", "session id (send)")
	id := fs.String("id", "", "message id (send)")
	body := fs.String("body", "", "body; publish reads one event per stdin line when empty")
	if err := fs.Parse(args); err != nil {
		return err
	}
	p, err := brokerPath(*appDir, *path)
	if err != nil {
		return err
	}
	br, err := local.Open(p)
	if err != nil {
		return err
	}
	defer br.Close()
	ctx := context.Background()
	switch cmd {
	case "publish":
		var events []local.Event
		if *body != "" {
			events = append(events, local.Event{Body: []byte(*body)})
		} else {
			sc := bufio.NewScanner(os.Stdin)
			sc.Buffer(make([]byte, 1<<20), local.MaxEventBytes+1)
			for sc.Scan() {
				if line := strings.TrimSpace(sc.Text()); line != "" {
					events = append(events, local.Event{Body: []byte(line)})
				}
			}
		}
		stored, err := br.Publish(ctx, *hub, *key, events)
		if err != nil {
			return err
		}
		for _, e := range stored {
			fmt.Printf("published to %s partition %d sequence %d\n", *hub, e.Partition, e.SequenceNumber)
		}
	case "send":
		if *body == "" {
			return errors.New("send needs -body")
		}
		if err := br.Send(ctx, *queue, local.Message{MessageID: *id, SessionID: *session, Body: []byte(*body)}); err != nil {
			return err
		}
		fmt.Printf("sent to %s (session %q)\n", *queue, *session)
	case "deadletters":
		msgs, err := br.DeadLetters(ctx, *queue, 1000)
		if err != nil {
			return err
		}
		for _, m := range msgs {
			fmt.Printf("%d\t%s\tsession=%s\tdeliveries=%d\t%s: %s\t%s\n", m.SequenceNumber, m.MessageID, m.SessionID, m.DeliveryCount, m.DeadLetterReason, m.DeadLetterDescription, m.Body)
		}
		fmt.Printf("%d dead-lettered message(s) in %s\n", len(msgs), *queue)
	}
	return nil
}
