// Package api is the HTTP-triggered function that serves the REST surface for the portal, the operator
// CLI and automation. The host forwards requests as they are (enableForwardingHttpRequest), so this is a
// plain net/http handler under /api/v1/: each route decodes, makes one domain call and encodes. Errors
// are RFC 7807 problem+json.
package api

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/standby-dr/standby/shared/apiv1"
	"github.com/standby-dr/standby/shared/failover"
	"github.com/standby-dr/standby/shared/replication"
)

// API is the api function.
type API struct {
	Groups *replication.Service
	Jobs   *failover.Admission
	Plans  failover.Plans
	// DeadLetters reads the job queue's dead-letter queue (nil: not configured).
	DeadLetters func(ctx context.Context, max int) ([]apiv1.DeadLetterView, error)
	Probes      []replication.Probe
	Log         *slog.Logger
	Now         func() time.Time
}

// Handler returns the routes.
func (a *API) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /api/v1/health", a.health)
	mux.HandleFunc("GET /api/v1/groups", a.listGroups)
	mux.HandleFunc("PUT /api/v1/groups/{group}", a.putGroup)
	mux.HandleFunc("GET /api/v1/groups/{group}", a.getGroup)
	mux.HandleFunc("DELETE /api/v1/groups/{group}", a.deleteGroup)
	mux.HandleFunc("POST /api/v1/groups/{group}/agent", a.postAgent)
	mux.HandleFunc("POST /api/v1/groups/{group}/resync", a.postResync)
	mux.HandleFunc("POST /api/v1/groups/{group}/seed", a.postSeed)
	mux.HandleFunc("GET /api/v1/groups/{group}/stream-key", a.getStreamKey)
	a.agentRoutes(mux)
	mux.HandleFunc("GET /api/v1/groups/{group}/disks/{vm}/{disk}/hashes", a.getDiskHashes)
	mux.HandleFunc("GET /api/v1/groups/{group}/recovery-points", a.getPoints)
	mux.HandleFunc("POST /api/v1/groups/{group}/events", a.postEvent)
	mux.HandleFunc("GET /api/v1/groups/{group}/events", a.getEvents)
	mux.HandleFunc("POST /api/v1/groups/{group}/failover", a.postFailover)
	mux.HandleFunc("POST /api/v1/groups/{group}/change-recovery-point", a.postChangePoint)
	mux.HandleFunc("POST /api/v1/groups/{group}/reprotect", a.postReprotect)
	for _, jobType := range []string{failover.JobCleanupTest, failover.JobCommit, failover.JobFailback} {
		mux.HandleFunc("POST /api/v1/groups/{group}/"+jobType, func(w http.ResponseWriter, r *http.Request) {
			a.startJob(w, r, failover.Request{Type: jobType})
		})
	}
	a.planRoutes(mux)
	mux.HandleFunc("GET /api/read/v1/{path...}", a.readOnly(mux))
	mux.HandleFunc("GET /api/v1/jobs/dead-letters", a.getDeadLetters)
	mux.HandleFunc("GET /api/v1/jobs/{id}", a.getJob)
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		Problem(w, r, http.StatusNotFound, "no such resource", fmt.Sprintf("%s %s is not part of the API", r.Method, r.URL.Path))
	})
	return mux
}

// Problem writes an RFC 7807 problem+json response.
func Problem(w http.ResponseWriter, r *http.Request, status int, title, detail string) {
	w.Header().Set("Content-Type", "application/problem+json")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false) // details quote what was sent, e.g. file:<path>
	enc.Encode(map[string]any{"type": "about:blank", "title": title, "status": status, "detail": replication.Redact(detail), "instance": r.URL.Path})
}

// problems maps the domain's errors to statuses and titles, first match first.
var problems = []struct {
	err    error
	status int
	title  string
}{
	{replication.ErrTooLarge, http.StatusRequestEntityTooLarge, "request too large"},
	{replication.ErrUnauthorized, http.StatusUnauthorized, "unauthorized"},
	{replication.ErrInvalid, http.StatusBadRequest, "invalid request"},
	{replication.ErrNoGroup, http.StatusNotFound, "not found"},
	{replication.ErrNotFound, http.StatusNotFound, "not found"},
	{replication.ErrState, http.StatusConflict, "conflicts with the group's state"},
	{replication.ErrConflict, http.StatusConflict, "conflict"},
	{replication.ErrNotConfigured, http.StatusServiceUnavailable, "not configured"},
	{replication.ErrUnavailable, http.StatusServiceUnavailable, "storage unavailable"},
}

// fail answers a domain call's error: its class's status, the message without the class's own words
// (before or after it).
func (a *API) fail(w http.ResponseWriter, r *http.Request, err error) {
	for _, p := range problems {
		if errors.Is(err, p.err) {
			detail := strings.TrimPrefix(err.Error(), p.err.Error()+": ")
			Problem(w, r, p.status, p.title, strings.TrimSuffix(detail, ": "+p.err.Error()))
			return
		}
	}
	a.Log.Error("request failed", "path", r.URL.Path, "err", err)
	Problem(w, r, http.StatusInternalServerError, "internal error", err.Error())
}

// answer encodes a domain call's result, or its error.
func (a *API) answer(w http.ResponseWriter, r *http.Request, status int, v any, err error) {
	if err != nil {
		a.fail(w, r, err)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	enc.Encode(v)
}

const maxBody = 1 << 20

// decode reads a JSON body of the expected shape, refusing unknown fields and trailing data.
func decode(r *http.Request, into any) error {
	data, err := io.ReadAll(io.LimitReader(r.Body, maxBody+1))
	if err != nil {
		return fmt.Errorf("%w: reading the body: %v", replication.ErrInvalid, err)
	}
	if len(data) > maxBody {
		return fmt.Errorf("%w: the body exceeds %d bytes", replication.ErrTooLarge, maxBody)
	}
	if err := replication.DecodeJSON(data, into, "body", "the expected shape"); err != nil {
		return fmt.Errorf("%w: %v", replication.ErrInvalid, err)
	}
	return nil
}

func (a *API) health(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), 5*time.Second)
	defer cancel()
	report := make([]apiv1.DependencyHealth, len(a.Probes))
	var wg sync.WaitGroup
	for i, p := range a.Probes {
		wg.Go(func() {
			start := time.Now()
			err := errors.New("not configured")
			if p.Check != nil {
				err = p.Check(ctx)
			}
			report[i] = apiv1.DependencyHealth{Name: p.Name, Reachable: err == nil, LatencyMs: time.Since(start).Milliseconds()}
			if err != nil {
				report[i].Error = replication.Redact(err.Error())
			}
		})
	}
	wg.Wait()
	status, code := "healthy", http.StatusOK
	for _, d := range report {
		if !d.Reachable {
			status, code = "degraded", http.StatusServiceUnavailable
		}
	}
	a.answer(w, r, code, map[string]any{"status": status, "dependencies": report}, nil)
}
