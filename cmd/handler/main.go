// Command handler is Standby's Azure Functions custom handler: one binary, one http.ServeMux, serving
// the four functions (apply, cutpoints, failover, api). The Functions host (or devhost locally) starts
// it with FUNCTIONS_CUSTOMHANDLER_PORT and POSTs invocations to /{functionName}; HTTP requests for the
// api function are forwarded as they are to /api/....
//
// It starts even when a dependency is unreachable or not configured: the health endpoint says which,
// and a function that needs it answers 500 with the reason.
package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/standby-dr/standby/functions/api"
	"github.com/standby-dr/standby/functions/apply"
	"github.com/standby-dr/standby/functions/cutpoints"
	"github.com/standby-dr/standby/functions/failover"
	"github.com/standby-dr/standby/shared/apiclient"
	"github.com/standby-dr/standby/shared/apiv1"
	"github.com/standby-dr/standby/shared/azconn"
	"github.com/standby-dr/standby/shared/eventhubs"
	jobs "github.com/standby-dr/standby/shared/failover"
	"github.com/standby-dr/standby/shared/funcproto"
	"github.com/standby-dr/standby/shared/journal"
	"github.com/standby-dr/standby/shared/local"
	"github.com/standby-dr/standby/shared/pageblobs"
	"github.com/standby-dr/standby/shared/replication"
	"github.com/standby-dr/standby/shared/servicebus"
	"github.com/standby-dr/standby/shared/tables"
)

func main() {
	log := newLogger(os.Getenv("STANDBY_LOG_LEVEL"))
	port := os.Getenv("FUNCTIONS_CUSTOMHANDLER_PORT")
	if port == "" {
		port = os.Getenv("FUNCTIONS_HTTPWORKER_PORT")
	}
	if port == "" {
		log.Error("no port: set FUNCTIONS_CUSTOMHANDLER_PORT (the Functions host sets it)")
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	deps := buildDeps(ctx, os.Getenv, log)
	defer deps.close()
	srv := &http.Server{Addr: net.JoinHostPort("127.0.0.1", port), Handler: routes(deps, log), ReadHeaderTimeout: 10 * time.Second}
	go func() {
		<-ctx.Done()
		shutdownCtx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		srv.Shutdown(shutdownCtx) // lets in-flight invocations finish
	}()
	log.Info("handler listening", "port", port)
	if err := srv.ListenAndServe(); err != nil && !errors.Is(err, http.ErrServerClosed) {
		log.Error("handler stopped", "err", err)
		os.Exit(1)
	}
	log.Info("handler stopped")
}

func newLogger(level string) *slog.Logger {
	var l slog.Level
	if err := l.UnmarshalText([]byte(level)); err != nil {
		l = slog.LevelInfo
	}
	return slog.New(slog.NewJSONHandler(os.Stderr, &slog.HandlerOptions{Level: l}))
}

// deps are the handler's dependencies, each nil when not configured.
type deps struct {
	deadLetters func(ctx context.Context, max int) ([]apiv1.DeadLetterView, error)
	state       replication.StateStore
	pages       replication.PageStore
	journal     replication.JournalStore
	jobs        replication.JobSender
	peer        jobs.PeerSite
	probes      []replication.Probe
	closer      []func()
}

func (d *deps) close() {
	for _, c := range d.closer {
		c()
	}
}

// Setting names (documented in the README's configuration reference).
const (
	settingTarget    = "StandbyTargetStorage"
	settingCache     = "StandbyCacheStorage"
	settingEventHubs = "StandbyEventHubs"
	settingHub       = "StandbyChangeHub"
	settingSB        = "StandbyServiceBus"
	settingQueue     = "StandbyJobQueue"
	settingJournal   = "StandbyJournalContainer"
	settingParallel  = "StandbyApplyParallelism"
	// settingPeerAPI is the other region's Standby API root (reprotect, failback), settingPeerKey its key.
	settingPeerAPI = "StandbyPeerApi"
	settingPeerKey = "StandbyPeerApiKey"
	// settingMaxDelivery is the job queue's MaxDeliveryCount: a step failing on that delivery fails its job.
	settingMaxDelivery = "StandbyJobMaxDeliveryCount"
)

func orDefault(v, def string) string {
	if strings.TrimSpace(v) == "" {
		return def
	}
	return v
}

func buildDeps(ctx context.Context, getenv func(string) string, log *slog.Logger) *deps {
	d := &deps{}
	fail := func(name string, err error) replication.Probe {
		log.Warn("dependency not available", "dependency", name, "err", err)
		return replication.Probe{Name: name, Check: func(context.Context) error { return err }}
	}
	// Target region storage: page blobs and tables.
	if s, err := azconn.Lookup(getenv, settingTarget, "table"); err != nil {
		d.probes = append(d.probes, fail("target-tables", err))
	} else if svc, err := tables.ServiceClient(s); err != nil {
		d.probes = append(d.probes, fail("target-tables", err))
	} else {
		store := tables.New(svc)
		d.state = store
		d.probes = append(d.probes, replication.Probe{Name: "target-tables", Check: store.Ping})
	}
	// Target disks (page blobs) and the cache journal (block blobs in the source region).
	if s, err := azconn.Lookup(getenv, settingTarget, "blob"); err != nil {
		d.probes = append(d.probes, fail("target-blobs", err))
	} else if svc, err := pageblobs.ServiceClient(s); err != nil {
		d.probes = append(d.probes, fail("target-blobs", err))
	} else {
		store := pageblobs.New(svc)
		d.pages = store
		d.probes = append(d.probes, replication.Probe{Name: "target-blobs", Check: store.Ping})
	}
	if s, err := azconn.Lookup(getenv, settingCache, "blob"); err != nil {
		d.probes = append(d.probes, fail("cache-blobs", err))
	} else if svc, err := pageblobs.ServiceClient(s); err != nil {
		d.probes = append(d.probes, fail("cache-blobs", err))
	} else {
		d.journal = journal.New(svc, orDefault(getenv(settingJournal), "journal"))
		d.probes = append(d.probes, replication.Probe{Name: "cache-blobs", Check: pageblobs.New(svc).Ping})
	}
	// The other region's deployment: reachable only when needed (it may be the region that is down).
	if base := strings.TrimSpace(getenv(settingPeerAPI)); base != "" {
		d.peer = apiclient.Peer{Client: apiclient.New(base, getenv(settingPeerKey))}
	}
	// Change stream.
	hub := orDefault(getenv(settingHub), "changes")
	if s, err := azconn.Lookup(getenv, settingEventHubs, ""); err != nil {
		d.probes = append(d.probes, fail("eventhubs", err))
	} else if local.IsConnection(s.ConnectionString) {
		if b, err := local.OpenConnection(s.ConnectionString); err != nil {
			d.probes = append(d.probes, fail("eventhubs", err))
		} else {
			d.closer = append(d.closer, func() { b.Close() })
			d.probes = append(d.probes, replication.Probe{Name: "eventhubs", Check: func(ctx context.Context) error {
				_, err := b.PartitionCount(ctx, hub)
				return err
			}})
		}
	} else if pub, err := eventhubs.NewPublisher(s, hub); err != nil {
		d.probes = append(d.probes, fail("eventhubs", err))
	} else {
		d.closer = append(d.closer, func() { pub.Close(context.Background()) })
		d.probes = append(d.probes, replication.Probe{Name: "eventhubs", Check: func(ctx context.Context) error {
			_, err := pub.Properties(ctx)
			return err
		}})
	}
	// Job queue.
	queue := orDefault(getenv(settingQueue), "jobs")
	if s, err := azconn.Lookup(getenv, settingSB, ""); err != nil {
		d.probes = append(d.probes, fail("servicebus", err))
	} else if local.IsConnection(s.ConnectionString) {
		if b, err := local.OpenConnection(s.ConnectionString); err != nil {
			d.probes = append(d.probes, fail("servicebus", err))
		} else {
			d.closer = append(d.closer, func() { b.Close() })
			d.jobs = local.NewJobSender(b, queue)
			d.deadLetters = func(ctx context.Context, max int) ([]apiv1.DeadLetterView, error) {
				msgs, err := b.DeadLetters(ctx, queue, max)
				out := make([]apiv1.DeadLetterView, len(msgs))
				for i, m := range msgs {
					out[i] = apiv1.DeadLetterView{MessageID: m.MessageID, SessionID: m.SessionID, Reason: m.DeadLetterReason,
						Description: m.DeadLetterDescription, Deliveries: m.DeliveryCount, Body: string(m.Body)}
				}
				return out, err
			}
			d.probes = append(d.probes, replication.Probe{Name: "servicebus", Check: func(ctx context.Context) error {
				_, err := b.Counts(ctx, queue)
				return err
			}})
		}
	} else if client, err := servicebus.NewClient(s); err != nil {
		d.probes = append(d.probes, fail("servicebus", err))
	} else if sender, err := servicebus.NewSender(client, queue); err != nil {
		d.probes = append(d.probes, fail("servicebus", err))
	} else {
		d.jobs = sender
		d.deadLetters = func(ctx context.Context, max int) ([]apiv1.DeadLetterView, error) {
			dls, err := servicebus.PeekDeadLetters(ctx, client, queue, max)
			out := make([]apiv1.DeadLetterView, len(dls))
			for i, m := range dls {
				out[i] = apiv1.DeadLetterView{MessageID: m.MessageID, SessionID: m.SessionID, Reason: m.Reason, Description: m.Description,
					Deliveries: int(m.Deliveries), Body: string(m.Body)}
			}
			return out, err
		}
		d.closer = append(d.closer, func() { sender.Close(context.Background()); client.Close(context.Background()) })
		d.probes = append(d.probes, replication.Probe{Name: "servicebus", Check: func(ctx context.Context) error {
			_, err := servicebus.PeekDeadLetters(ctx, client, queue, 1)
			return err
		}})
	}
	return d
}

func routes(d *deps, log *slog.Logger) http.Handler {
	now := time.Now
	mux := http.NewServeMux()
	applyFn := &apply.Function{State: d.state, Log: log.With("function", "apply")}
	if d.state != nil && d.pages != nil && d.journal != nil {
		parallelism, err := strconv.Atoi(orDefault(os.Getenv(settingParallel), "8"))
		if err != nil || parallelism < 1 {
			log.Warn("ignoring an invalid StandbyApplyParallelism", "value", os.Getenv(settingParallel))
			parallelism = 8
		}
		applyFn.Applier = &replication.Applier{State: d.state, Pages: d.pages, Journal: d.journal, Log: log.With("function", "apply"),
			Now: now, Parallelism: parallelism}
	}
	cutFn := &cutpoints.Function{State: d.state, Pages: d.pages, Journal: d.journal, Log: log.With("function", "cutpoints"), Now: now}
	failFn := &failover.Function{}
	if d.state != nil && d.pages != nil && d.jobs != nil {
		maxDeliveries, err := strconv.ParseInt(orDefault(os.Getenv(settingMaxDelivery), "10"), 10, 64)
		if err != nil || maxDeliveries < 1 {
			log.Warn("ignoring an invalid StandbyJobMaxDeliveryCount", "value", os.Getenv(settingMaxDelivery))
			maxDeliveries = 10
		}
		failFn.Runner = &jobs.JobRunner{State: d.state, Pages: d.pages, Journal: d.journal, Jobs: d.jobs, Log: log.With("function", "failover"),
			Now: now, MaxDeliveries: maxDeliveries, Peer: d.peer,
			Restorer: &replication.Restorer{State: d.state, Pages: d.pages, Journal: d.journal, Parallelism: 8}}
	}
	mux.Handle("POST /apply", funcproto.Handler(log, "apply", applyFn.Invoke))
	mux.Handle("POST /cutpoints", funcproto.Handler(log, "cutpoints", cutFn.Invoke))
	mux.Handle("POST /failover", funcproto.Handler(log, "failover", failFn.Invoke))
	apiFn := &api.API{DeadLetters: d.deadLetters, State: d.state, Pages: d.pages, Journal: d.journal, Jobs: d.jobs, Probes: d.probes,
		PeerConfigured: d.peer != nil, Log: log.With("function", "api"), Now: now}
	mux.Handle("/api/", apiFn.Handler())
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, fmt.Sprintf("no function at %s", r.URL.Path), http.StatusNotFound)
	})
	return mux
}
