// Package api is the HTTP-triggered function that serves the REST surface for the portal, the operator
// CLI and automation. The host forwards requests as they are (enableForwardingHttpRequest), so this is a
// plain net/http handler under /api/v1/. Errors are RFC 7807 problem+json.
package api

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"sync"
	"time"

	"github.com/standby-dr/standby/shared/apiv1"
	"github.com/standby-dr/standby/shared/failover"
	"github.com/standby-dr/standby/shared/replication"
)

// API is the api function.
type API struct {
	// DeadLetters reads the job queue's dead-letter queue (nil: not configured).
	DeadLetters func(ctx context.Context, max int) ([]apiv1.DeadLetterView, error)
	State       replication.StateStore
	Pages       replication.PageStore
	Journal     replication.JournalStore
	Jobs        replication.JobSender
	// PeerConfigured: the other region's deployment is known (reprotect and failback need it).
	PeerConfigured bool
	Probes         []replication.Probe
	Log            *slog.Logger
	Now            func() time.Time
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
	mux.HandleFunc("GET /api/v1/groups/{group}/disks/{vm}/{disk}/hashes", a.getDiskHashes)
	mux.HandleFunc("GET /api/v1/groups/{group}/recovery-points", a.getPoints)
	mux.HandleFunc("POST /api/v1/groups/{group}/events", a.postEvent)
	mux.HandleFunc("GET /api/v1/groups/{group}/events", a.getEvents)
	mux.HandleFunc("POST /api/v1/groups/{group}/failover", a.postFailover)
	mux.HandleFunc("POST /api/v1/groups/{group}/cleanup-test-failover", a.postCleanupTest)
	mux.HandleFunc("POST /api/v1/groups/{group}/commit", a.postCommit)
	mux.HandleFunc("POST /api/v1/groups/{group}/change-recovery-point", a.postChangePoint)
	mux.HandleFunc("POST /api/v1/groups/{group}/reprotect", a.postReprotect)
	mux.HandleFunc("POST /api/v1/groups/{group}/failback", a.postFailback)
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
	enc.Encode(map[string]any{"type": "about:blank", "title": title, "status": status, "detail": detail, "instance": r.URL.Path})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	enc.Encode(v)
}

func (a *API) health(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), 5*time.Second)
	defer cancel()
	report := make([]apiv1.DependencyHealth, len(a.Probes))
	var wg sync.WaitGroup
	for i, p := range a.Probes {
		wg.Add(1)
		go func() {
			defer wg.Done()
			start := time.Now()
			var err error
			if p.Check == nil {
				err = errors.New("not configured")
			} else {
				err = p.Check(ctx)
			}
			report[i] = apiv1.DependencyHealth{Name: p.Name, Reachable: err == nil, LatencyMs: time.Since(start).Milliseconds()}
			if err != nil {
				report[i].Error = err.Error()
			}
		}()
	}
	wg.Wait()
	status, code := "healthy", http.StatusOK
	for _, d := range report {
		if !d.Reachable {
			status, code = "degraded", http.StatusServiceUnavailable
		}
	}
	writeJSON(w, code, map[string]any{"status": status, "dependencies": report})
}

func (a *API) storeProblem(w http.ResponseWriter, r *http.Request, err error, what string) {
	switch {
	case errors.Is(err, replication.ErrNotFound):
		Problem(w, r, http.StatusNotFound, "not found", what+" does not exist")
	case errors.Is(err, replication.ErrConflict):
		Problem(w, r, http.StatusConflict, "conflict", err.Error())
	case errors.Is(err, replication.ErrUnavailable):
		Problem(w, r, http.StatusServiceUnavailable, "storage unavailable", err.Error())
	default:
		a.Log.Error("request failed", "path", r.URL.Path, "err", err)
		Problem(w, r, http.StatusInternalServerError, "internal error", err.Error())
	}
}

const maxBody = 1 << 20

func decodeBody(r *http.Request, into any) error {
	data, err := io.ReadAll(io.LimitReader(r.Body, maxBody+1))
	if err != nil {
		return fmt.Errorf("reading the body: %w", err)
	}
	if len(data) > maxBody {
		return fmt.Errorf("body exceeds %d bytes", maxBody)
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(into); err != nil {
		return fmt.Errorf("body is not valid JSON of the expected shape: %w", err)
	}
	if dec.More() {
		return errors.New("body has trailing data after the JSON object")
	}
	return nil
}

func (a *API) postFailover(w http.ResponseWriter, r *http.Request) {
	if _, ok := groupName(w, r); !ok {
		return
	}
	var req apiv1.FailoverRequest
	if err := decodeBody(r, &req); err != nil {
		Problem(w, r, http.StatusBadRequest, "invalid body", err.Error())
		return
	}
	switch req.Type {
	case "test", "planned", "unplanned":
	default:
		Problem(w, r, http.StatusBadRequest, "invalid field type", fmt.Sprintf("type %q: want test, planned or unplanned", req.Type))
		return
	}
	if req.RecoveryPoint == "" {
		req.RecoveryPoint = "latestProcessed"
	}
	if req.Type == "planned" && req.RecoveryPoint != "latestProcessed" {
		Problem(w, r, http.StatusBadRequest, "invalid field recoveryPoint", "a planned failover goes to the point the agent's final writes make; leave recoveryPoint out")
		return
	}
	if req.Type == failover.JobTestFailover {
		g, ok := a.loadGroup(w, r)
		if !ok {
			return
		}
		if err := g.Spec.CheckTestNetwork(); err != nil {
			Problem(w, r, http.StatusConflict, "cannot run a test failover", err.Error())
			return
		}
	}
	if req.JobID != "" && !isJobID(req.JobID) {
		Problem(w, r, http.StatusBadRequest, "invalid field jobId", fmt.Sprintf("jobId %q is not 32 lowercase hex digits", req.JobID))
		return
	}
	a.startJob(w, r, req.Type, req.RecoveryPoint, req.JobID)
}

func isJobID(s string) bool {
	if len(s) != 32 {
		return false
	}
	for _, c := range s {
		if (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}
	return true
}

func (a *API) postCommit(w http.ResponseWriter, r *http.Request) {
	a.startJob(w, r, failover.JobCommit, "", "")
}

// postReprotect reverses replication after a committed failover — checked here (a peer site, original
// disks that are page blobs) so that a request that cannot work is refused rather than queued — or,
// after a failback, resumes it in the first direction.
func (a *API) postReprotect(w http.ResponseWriter, r *http.Request) {
	g, ok := a.loadGroup(w, r)
	if !ok || !a.needPeer(w, r) {
		return
	}
	if g.Record.State == replication.StateFailedBack {
		a.startJob(w, r, failover.JobReprotectForward, "", "")
		return
	}
	if g.Record.State == replication.StateCommitted {
		var fo failover.Job
		if _, err := a.State.Get(r.Context(), failover.JobsTable, g.Record.FailoverJob, failover.JobRow, &fo); err != nil {
			a.storeProblem(w, r, err, "failover job "+g.Record.FailoverJob)
			return
		}
		if _, err := failover.ReverseSpec(g.Record.PartitionKey, g.Spec, fo.Container, a.Pages.URL); err != nil {
			Problem(w, r, http.StatusConflict, "cannot reprotect", err.Error())
			return
		}
	}
	a.startJob(w, r, failover.JobReprotect, "", "")
}

func (a *API) postFailback(w http.ResponseWriter, r *http.Request) {
	if a.needPeer(w, r) {
		a.startJob(w, r, failover.JobFailback, "", "")
	}
}

func (a *API) needPeer(w http.ResponseWriter, r *http.Request) bool {
	if !a.PeerConfigured {
		Problem(w, r, http.StatusServiceUnavailable, "peer site not configured", "reprotect and failback drive the other region's Standby deployment: set StandbyPeerApi (and StandbyPeerApiKey)")
		return false
	}
	return true
}

func (a *API) postChangePoint(w http.ResponseWriter, r *http.Request) {
	var req apiv1.ChangePointRequest
	if err := decodeBody(r, &req); err != nil {
		Problem(w, r, http.StatusBadRequest, "invalid body", err.Error())
		return
	}
	if req.RecoveryPoint == "" {
		Problem(w, r, http.StatusBadRequest, "invalid field recoveryPoint", "recoveryPoint is required")
		return
	}
	a.startJob(w, r, failover.JobChangePoint, req.RecoveryPoint, "")
}

func (a *API) getDeadLetters(w http.ResponseWriter, r *http.Request) {
	if a.DeadLetters == nil {
		Problem(w, r, http.StatusServiceUnavailable, "job queue not configured", "set StandbyServiceBus")
		return
	}
	dls, err := a.DeadLetters(r.Context(), 100)
	if err != nil {
		a.storeProblem(w, r, err, "the dead-letter queue")
		return
	}
	if dls == nil {
		dls = []apiv1.DeadLetterView{}
	}
	writeJSON(w, http.StatusOK, map[string]any{"deadLetters": dls})
}

func (a *API) postCleanupTest(w http.ResponseWriter, r *http.Request) {
	a.startJob(w, r, failover.JobCleanupTest, "", "")
}

// startJob validates the job against the group's state, records it and queues its first step. With a
// job id, a job already recorded under it is answered as it is (the request was retried).
func (a *API) startJob(w http.ResponseWriter, r *http.Request, jobType, point, jobID string) {
	g, ok := a.loadGroup(w, r)
	if !ok {
		return
	}
	if a.Jobs == nil {
		Problem(w, r, http.StatusServiceUnavailable, "job queue not configured", "set StandbyServiceBus")
		return
	}
	now := a.Now().UTC()
	job, err := failover.NewJob(g.Record.PartitionKey, jobType, point, now)
	if err != nil {
		Problem(w, r, http.StatusBadRequest, "invalid job", err.Error())
		return
	}
	if jobID != "" {
		job.PartitionKey = jobID
	}
	// The job row first, then the group's claim on it: a claim always names a recorded job, so a claim
	// naming a missing job is stale (its request failed), and two concurrent requests cannot both win.
	if _, err := a.State.Insert(r.Context(), failover.JobsTable, job); err != nil {
		if jobID != "" && errors.Is(err, replication.ErrConflict) {
			a.existingJob(w, r, jobID, g.Record.PartitionKey, jobType)
			return
		}
		a.storeProblem(w, r, err, "job "+job.ID())
		return
	}
	_, err = replication.UpdateGroup(r.Context(), a.State, g.Record.PartitionKey, func(rec *replication.GroupRecord) error {
		failedOver := rec.State == replication.StateFailedOver || rec.State == replication.StateCommitted ||
			rec.State == replication.StateReprotected || rec.State == replication.StateFailedBack
		switch {
		case (jobType == failover.JobPlannedFailover || jobType == failover.JobUnplannedFailover) && failedOver:
			return fmt.Errorf("%w: the group is %s already", errState, rec.State)
		case jobType == failover.JobPlannedFailover && rec.State != replication.StateProtected:
			return fmt.Errorf("%w: a planned failover needs a Protected group, it is %s", errState, rec.State)
		case jobType == failover.JobUnplannedFailover && rec.LastPointTime.IsZero():
			return fmt.Errorf("%w: the group has no recovery point to fail over to (state %s)", errState, rec.State)
		case jobType == failover.JobReprotect && rec.State == replication.StateFailedOver:
			return fmt.Errorf("%w: reprotect needs a committed failover; the group is FailedOver: commit it first", errState)
		case jobType == failover.JobReprotect && rec.State != replication.StateCommitted:
			return fmt.Errorf("%w: reprotect needs a committed failover; the group is %s", errState, rec.State)
		case jobType == failover.JobFailback && rec.State != replication.StateReprotected:
			return fmt.Errorf("%w: failback needs a Reprotected group (replicating back); it is %s", errState, rec.State)
		case jobType == failover.JobReprotectForward && rec.State != replication.StateFailedBack:
			return fmt.Errorf("%w: the group is %s, no longer FailedBack", errState, rec.State)
		case jobType == failover.JobReprotect || jobType == failover.JobFailback || jobType == failover.JobReprotectForward:
			if busy, err := a.claimedBy(r.Context(), rec.WayBackJob, (*failover.Job).Terminal); err != nil || busy != nil {
				if busy != nil {
					err = fmt.Errorf("%w: %s job %s is %s", errState, busy.Type, busy.ID(), busy.State)
				}
				return err
			}
			rec.WayBackJob = job.ID()
		case jobType == failover.JobCommit && rec.State != replication.StateFailedOver:
			return fmt.Errorf("%w: only a FailedOver group can be committed, it is %s", errState, rec.State)
		case jobType == failover.JobChangePoint && rec.State != replication.StateFailedOver:
			return fmt.Errorf("%w: the recovery point of a failover can change until it is committed; the group is %s", errState, rec.State)
		case jobType == failover.JobPlannedFailover || jobType == failover.JobUnplannedFailover:
			// Only a failed failover frees the claim: a group once failed over stays claimed.
			failed := func(j *failover.Job) bool { return j.State == failover.JobFailed }
			if busy, err := a.claimedBy(r.Context(), rec.FailoverJob, failed); err != nil || busy != nil {
				if busy != nil {
					err = fmt.Errorf("%w: failover job %s is %s", errState, busy.ID(), busy.State)
				}
				return err
			}
			rec.FailoverJob = job.ID() // one failover at a time: a concurrent request finds this one
		case jobType == failover.JobCommit || jobType == failover.JobChangePoint:
		case jobType == failover.JobTestFailover && rec.ActiveTestFailover != "":
			return fmt.Errorf("%w: test failover %s is active: clean it up first", errState, rec.ActiveTestFailover)
		case jobType == failover.JobTestFailover && rec.LastPointTime.IsZero():
			return fmt.Errorf("%w: the group has no recovery point yet (state %s)", errState, rec.State)
		case jobType == failover.JobCleanupTest && rec.ActiveTestFailover == "":
			return fmt.Errorf("%w: no test failover to clean up", errState)
		case jobType == failover.JobTestFailover:
			rec.ActiveTestFailover = job.ID()
		default:
			rec.ActiveTestFailover = ""
		}
		return nil
	})
	if err != nil {
		a.State.Delete(r.Context(), failover.JobsTable, job.ID(), failover.JobRow, "") // never queued
	}

	if errors.Is(err, errState) {
		Problem(w, r, http.StatusConflict, "conflicts with the group's state", stateDetail(err))
		return
	}
	if err != nil {
		a.storeProblem(w, r, err, "group "+g.Record.PartitionKey)
		return
	}
	if err := failover.QueueJob(r.Context(), a.Jobs, job); err != nil {
		a.storeProblem(w, r, err, "job "+job.ID())
		return
	}
	a.Log.Info("job queued", "job", job.ID(), "group", job.Group, "type", jobType)
	w.Header().Set("Location", "/api/v1/jobs/"+job.ID())
	writeJSON(w, http.StatusAccepted, apiv1.NewJobView(job))
}

// claimedBy returns the job a group's claim names until released says the claim is free (nil when there
// is no claim, it is released, or it is stale: its request failed before the job was queued).
func (a *API) claimedBy(ctx context.Context, id string, released func(*failover.Job) bool) (*failover.Job, error) {
	if id == "" {
		return nil, nil
	}
	var job failover.Job
	_, err := a.State.Get(ctx, failover.JobsTable, id, failover.JobRow, &job)
	if errors.Is(err, replication.ErrNotFound) {
		return nil, nil
	}
	if err != nil || released(&job) {
		return nil, err
	}
	return &job, nil
}

// existingJob answers a retried request with the job recorded under its id, or 409 when that id is
// another group's or another type's job.
func (a *API) existingJob(w http.ResponseWriter, r *http.Request, id, group, jobType string) {
	var job failover.Job
	if _, err := a.State.Get(r.Context(), failover.JobsTable, id, failover.JobRow, &job); err != nil {
		a.storeProblem(w, r, err, "job "+id)
		return
	}
	if job.Group != group || job.Type != jobType {
		Problem(w, r, http.StatusConflict, "job id in use", fmt.Sprintf("job %s is a %s job of group %s", id, job.Type, job.Group))
		return
	}
	w.Header().Set("Location", "/api/v1/jobs/"+job.ID())
	writeJSON(w, http.StatusAccepted, apiv1.NewJobView(job))
}

func (a *API) getJob(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	if len(id) != 32 {
		Problem(w, r, http.StatusBadRequest, "invalid job id", fmt.Sprintf("job id %q is not 32 hex digits", id))
		return
	}
	if a.State == nil {
		Problem(w, r, http.StatusServiceUnavailable, "state store not configured", "set StandbyTargetStorage")
		return
	}
	var job failover.Job
	if _, err := a.State.Get(r.Context(), failover.JobsTable, id, failover.JobRow, &job); err != nil {
		a.storeProblem(w, r, err, "job "+id)
		return
	}
	writeJSON(w, http.StatusOK, apiv1.NewJobView(job))
}
