package main

import (
	"context"
	"errors"
	"fmt"
	"github.com/standby-dr/standby/shared/azure/azconn"
	"io"
	"log/slog"
	"net/http"
	"path/filepath"
	"sync"
	"time"

	"github.com/standby-dr/standby/shared/standin/broker"
)

// Host drives the app's triggers against the handler. Each trigger kind lives in its own file
// (timer.go, eventhubs.go, servicebus.go, http.go); invocations go through invoke.go.
type Host struct {
	App      *App
	Sup      *Supervisor
	Log      *slog.Logger
	StateDir string
	Out      io.Writer // the invocation log a person reads
	// HTTPCap is how long a caller waits for an HTTP-triggered function: 230 s in Azure whatever
	// functionTimeout says, the idle timeout of its load balancer (MicrosoftDocs/azure-docs@4564cc65,
	// includes/functions-timeout-duration.md:23-24).
	HTTPCap time.Duration

	client  *http.Client
	mu      sync.Mutex
	brokers map[string]*broker.Broker
}

// NewHost prepares a host; brokers open lazily from the connection settings.
func NewHost(app *App, sup *Supervisor, log *slog.Logger, stateDir string, out io.Writer) *Host {
	return &Host{App: app, Sup: sup, Log: log, StateDir: stateDir, Out: out, HTTPCap: 230 * time.Second,
		client: &http.Client{Timeout: app.Host.functionTimeout + time.Minute}, brokers: map[string]*broker.Broker{}}
}

// broker opens the embedded broker a connection setting names.
func (h *Host) broker(setting string) (*broker.Broker, error) {
	value, ok := h.App.Values[setting]
	if !ok {
		return nil, fmt.Errorf("connection setting %s is not in local.settings.json Values", setting)
	}
	if !azconn.IsEmbeddedBroker(value) {
		return nil, fmt.Errorf("connection setting %s is not an embedded broker connection (%s;Path=...): devhost drives triggers from the embedded broker only", setting, azconn.BrokerPrefix)
	}
	path, err := azconn.BrokerPath(value)
	if err != nil {
		return nil, fmt.Errorf("connection setting %s: %w", setting, err)
	}
	if !filepath.IsAbs(path) { // set in the environment: the working directory's, as for any process
		path, _ = filepath.Abs(path)
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if b, ok := h.brokers[path]; ok {
		return b, nil
	}
	b, err := broker.Open(path)
	if err != nil {
		return nil, err
	}
	h.brokers[path] = b
	return b, nil
}

// DeclareEntities declares the broker config's entities in every broker file the app's connections name.
func (h *Host) DeclareEntities(ctx context.Context, cfg broker.Config, cfgPath string) error {
	for _, fn := range h.App.Functions {
		for _, b := range fn.Bindings {
			if b.Connection == "" {
				continue
			}
			br, err := h.broker(b.Connection)
			if err != nil {
				return fmt.Errorf("%s: %w", fn.File, err)
			}
			if err := br.Apply(ctx, cfg); err != nil {
				return fmt.Errorf("%s: %w", cfgPath, err)
			}
		}
	}
	return nil
}

// Close closes the brokers.
func (h *Host) Close() {
	for _, b := range h.brokers {
		b.Close()
	}
}

// Run starts every trigger and the HTTP front door and blocks until ctx ends.
func (h *Host) Run(ctx context.Context, ready chan<- string) error {
	var wg sync.WaitGroup
	var httpFns []*Function
	for _, fn := range h.App.Functions {
		if fn.Disabled {
			continue
		}
		var err error
		switch fn.Trigger.Type {
		case "timerTrigger":
			wg.Add(1)
			go func() { defer wg.Done(); h.runTimer(ctx, fn) }()
		case "eventHubTrigger":
			err = h.startEventHub(ctx, &wg, fn)
		case "serviceBusTrigger":
			err = h.startServiceBus(ctx, &wg, fn)
		case "httpTrigger":
			httpFns = append(httpFns, fn)
		}
		if err != nil {
			return err
		}
	}
	srv := &http.Server{Addr: fmt.Sprintf("127.0.0.1:%d", h.App.HTTPPort), Handler: h.frontDoor(httpFns), ReadHeaderTimeout: 10 * time.Second}
	errc := make(chan error, 1)
	go func() {
		if err := srv.ListenAndServe(); err != nil && !errors.Is(err, http.ErrServerClosed) {
			errc <- err
		}
	}()
	h.printSummary()
	if ready != nil {
		ready <- fmt.Sprintf("http://127.0.0.1:%d", h.App.HTTPPort)
	}
	select {
	case <-ctx.Done():
	case err := <-errc:
		return fmt.Errorf("HTTP front door on port %d: %w", h.App.HTTPPort, err)
	}
	shutdownCtx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	srv.Shutdown(shutdownCtx)
	wg.Wait()
	return nil
}

func (h *Host) printSummary() {
	fmt.Fprintf(h.Out, "\nFunctions (handler %s on port %d):\n", h.Sup.Path, h.Sup.Port)
	for _, fn := range h.App.Functions {
		var src string
		switch fn.Trigger.Type {
		case "timerTrigger":
			src = h.describeTimer(fn)
		case "eventHubTrigger":
			src = h.describeEventHub(fn)
		case "serviceBusTrigger":
			src = h.describeServiceBus(fn)
		case "httpTrigger":
			src = h.describeHTTP(fn)
		}
		state := ""
		if fn.Disabled {
			state = " (disabled)"
		}
		fmt.Fprintf(h.Out, "  %-10s %-18s %s%s\n", fn.Name, fn.Trigger.Type, src, state)
	}
	fmt.Fprintln(h.Out)
}
