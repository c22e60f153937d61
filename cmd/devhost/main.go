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
	"context"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/standby-dr/standby/shared/replication"
	"github.com/standby-dr/standby/shared/standin/broker"
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
	appDir := fs.String("app", ".", "the function app's root (host.json, <function>/function.json, as make package stages it in dist/app)")
	settings := fs.String("settings", "", "the local.settings.json to use (default: the one at the app's root)")
	brokerConfig := fs.String("broker-config", "infra/local/broker.json", "entities to declare in the embedded broker (relative to -app)")
	stateDir := fs.String("state", ".local/devhost", "where timer schedule status is kept (relative to -app)")
	httpCap := fs.Duration("http-cap", 230*time.Second, "how long an HTTP-triggered call may take before the caller gets 504 (Azure's front end: 230 s)")
	port := fs.Int("port", 0, "HTTP port (default: local.settings.json Host.LocalHttpPort, else 7071)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	root, _ := filepath.Abs(*appDir)
	log := slog.New(replication.RedactingHandler(slog.NewJSONHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelInfo}))).With("component", "devhost")
	app, err := LoadApp(root, *settings, os.Environ())
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
	cfg, err := broker.LoadConfig(cfgPath)
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
	host.HTTPCap = *httpCap
	defer host.Close()
	// Declare the entities in every broker file the app's connections name.
	if err := host.DeclareEntities(context.Background(), cfg, cfgPath); err != nil {
		return err
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
	br, err := broker.Open(p)
	if err != nil {
		return err
	}
	defer br.Close()
	ctx := context.Background()
	switch cmd {
	case "publish":
		return publish(ctx, br, *hub, *key, *body)
	case "send":
		return send(ctx, br, *queue, *session, *id, *body)
	default:
		return deadletters(ctx, br, *queue)
	}
}
