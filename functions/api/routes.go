package api

import (
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/standby-dr/standby/shared/api/apiserver"
	"github.com/standby-dr/standby/shared/api/apiv1"
	"github.com/standby-dr/standby/shared/recovery"
	"github.com/standby-dr/standby/shared/replication"
)

func (a *API) putGroup(w http.ResponseWriter, r *http.Request) {
	var spec replication.GroupSpec
	if err := apiserver.DecodeBody(r, &spec); err != nil {
		a.fail(w, r, err)
		return
	}
	enable := a.Groups.Enable
	if roleOf(r) == apiv1.RolePeer {
		enable = a.Groups.EnableForPeer
	}
	g, outcome, err := enable(r.Context(), r.PathValue("group"), spec)
	status := http.StatusOK
	if outcome == replication.Enabled {
		status = http.StatusCreated
	}
	a.answer(w, r, status, groupView(g, a.Now()), err)
}

func groupView(g *replication.Group, now time.Time) *apiv1.GroupView {
	if g == nil {
		return nil
	}
	v := apiserver.NewGroupView(g, now)
	return &v
}

func (a *API) getGroup(w http.ResponseWriter, r *http.Request) {
	st, err := a.Groups.Status(r.Context(), r.PathValue("group"))
	if err != nil {
		a.fail(w, r, err)
		return
	}
	a.answer(w, r, http.StatusOK, apiserver.NewStatusView(st, a.Now()), nil)
}

func (a *API) listGroups(w http.ResponseWriter, r *http.Request) {
	groups, err := a.Groups.List(r.Context())
	a.answer(w, r, http.StatusOK, apiserver.NewGroupList(groups, a.Now()), err)
}

// deleteGroup disables replication: keepData=true (the default) keeps the target disks and recovery
// state; keepData=false removes them (204).
func (a *API) deleteGroup(w http.ResponseWriter, r *http.Request) {
	keep, err := apiserver.BoolQuery(r.URL.Query(), "keepData", true)
	var g *replication.Group
	if err == nil {
		g, err = a.Groups.Disable(r.Context(), r.PathValue("group"), keep)
	}
	if err == nil && g == nil {
		w.WriteHeader(http.StatusNoContent)
		return
	}
	a.answer(w, r, http.StatusOK, groupView(g, a.Now()), err)
}

func (a *API) postAgent(w http.ResponseWriter, r *http.Request) {
	var rep replication.AgentReport // the wire's apiv1.AgentReport, field for field
	err := apiserver.DecodeBody(r, &rep)
	var in replication.AgentInstructions
	if err == nil {
		in, err = a.Agents.Heartbeat(r.Context(), r.PathValue("group"), rep)
	}
	a.answer(w, r, http.StatusOK, in, err)
}

func (a *API) postResync(w http.ResponseWriter, r *http.Request) {
	group := r.PathValue("group")
	rec, err := a.Groups.Resync(r.Context(), group)
	a.answer(w, r, http.StatusAccepted, apiv1.ResyncView{Group: group, State: apiv1.State(rec.State), Reason: rec.Reason}, err)
}

// postSeed starts, follows and finishes a reprotect's seeding of this site's disks from managed disks
// (the peer's reprotect job calls it until done).
func (a *API) postSeed(w http.ResponseWriter, r *http.Request) {
	var req replication.SeedRequest
	if err := apiserver.DecodeBody(r, &req); err != nil {
		a.fail(w, r, err)
		return
	}
	st, err := a.Groups.Seed(r.Context(), r.PathValue("group"), req)
	a.answer(w, r, http.StatusOK, st, err)
}

// getDiskHashes answers a page of a disk's block hashes: ?from= (default 0) and ?count= (default and
// at most replication.MaxHashBlocks); the answer's next continues.
func (a *API) getDiskHashes(w http.ResponseWriter, r *http.Request) {
	from, err := apiserver.IntQuery(r.URL.Query(), "from", 0)
	count, err2 := apiserver.IntQuery(r.URL.Query(), "count", replication.MaxHashBlocks)
	var hashes replication.DiskHashes
	if err = errors.Join(err, err2); err == nil {
		hashes, err = a.Agents.BlockHashes(r.Context(), r.PathValue("group"), r.PathValue("vm"), r.PathValue("disk"), from, count)
	}
	a.answer(w, r, http.StatusOK, hashes, err)
}

func (a *API) getPoints(w http.ResponseWriter, r *http.Request) {
	q, err := apiserver.PointQueryOf(r.URL.Query())
	var listing replication.PointListing
	if err == nil {
		listing, err = a.Points.List(r.Context(), r.PathValue("group"), q)
	}
	if err != nil {
		a.fail(w, r, err)
		return
	}
	a.answer(w, r, http.StatusOK, apiserver.NewPointsPage(listing), nil)
}

func (a *API) getRPOHistory(w http.ResponseWriter, r *http.Request) {
	from, to, err := apiserver.TimeRange(r.URL.Query())
	var samples []replication.RPOSample
	if err == nil {
		samples, err = a.Points.RPOHistory(r.Context(), r.PathValue("group"), from, to)
	}
	a.answer(w, r, http.StatusOK, apiserver.NewRPOHistoryView(r.PathValue("group"), samples), err)
}

func (a *API) postEvent(w http.ResponseWriter, r *http.Request) {
	var ev apiv1.EventReport
	err := apiserver.DecodeBody(r, &ev)
	if err == nil {
		err = a.Agents.ReportEvent(r.Context(), r.PathValue("group"), ev.Kind, ev.Message)
	}
	if err == nil {
		w.WriteHeader(http.StatusNoContent)
		return
	}
	a.fail(w, r, err)
}

func (a *API) getEvents(w http.ResponseWriter, r *http.Request) {
	group := r.PathValue("group")
	limit, err := apiserver.IntQuery(r.URL.Query(), "limit", 100)
	var events []replication.Event
	var next string
	if err == nil {
		events, next, err = a.Groups.Events(r.Context(), group, int(limit), r.URL.Query().Get("after"))
	}
	a.answer(w, r, http.StatusOK, apiv1.EventsPage{Group: group, Events: apiserver.NewEventViews(events), Next: next}, err)
}

func (a *API) postFailover(w http.ResponseWriter, r *http.Request) {
	var req apiv1.FailoverRequest
	if err := apiserver.DecodeBody(r, &req); err != nil {
		a.fail(w, r, err)
		return
	}
	job, err := a.Jobs.StartFailover(r.Context(), recovery.Request{Group: r.PathValue("group"), Type: req.Type, RecoveryPoint: req.RecoveryPoint, JobID: req.JobID})
	a.jobAccepted(w, r, job, err)
}

func (a *API) postChangePoint(w http.ResponseWriter, r *http.Request) {
	var req apiv1.ChangePointRequest
	if err := apiserver.DecodeBody(r, &req); err != nil {
		a.fail(w, r, err)
		return
	}
	a.startJob(w, r, recovery.Request{Type: recovery.JobChangePoint, RecoveryPoint: req.RecoveryPoint})
}

// postReprotect starts a reprotect; its body (optional) says where the agent on each failed-over VM
// reads its disks.
func (a *API) postReprotect(w http.ResponseWriter, r *http.Request) {
	var req apiv1.ReprotectRequest
	if err := apiserver.DecodeOptionalBody(r, &req); err != nil {
		a.fail(w, r, err)
		return
	}
	a.startJob(w, r, recovery.Request{Type: recovery.JobReprotect, Sources: req.Sources})
}

func (a *API) startJob(w http.ResponseWriter, r *http.Request, req recovery.Request) {
	req.Group = r.PathValue("group")
	job, err := a.Jobs.Start(r.Context(), req)
	a.jobAccepted(w, r, job, err)
}

// jobAccepted answers 202 with the job and its address.
func (a *API) jobAccepted(w http.ResponseWriter, r *http.Request, job recovery.Job, err error) {
	if err == nil {
		w.Header().Set("Location", "/api/v1/jobs/"+job.ID())
	}
	a.answer(w, r, http.StatusAccepted, apiserver.NewJobView(job), err)
}

func (a *API) getJob(w http.ResponseWriter, r *http.Request) {
	job, err := a.Jobs.Job(r.Context(), r.PathValue("id"))
	a.answer(w, r, http.StatusOK, apiserver.NewJobView(job), err)
}

func (a *API) listJobs(w http.ResponseWriter, r *http.Request) {
	limit, err := apiserver.IntQuery(r.URL.Query(), "limit", 50)
	var jobs []recovery.Job
	if err == nil {
		q := r.URL.Query()
		jobs, err = a.Jobs.ListJobs(r.Context(), recovery.JobFilter{Group: q.Get("group"), State: q.Get("state"), Type: q.Get("type")}, int(limit))
	}
	a.answer(w, r, http.StatusOK, apiserver.NewJobList(jobs), err)
}

func (a *API) getDeadLetters(w http.ResponseWriter, r *http.Request) {
	if a.DeadLetters == nil {
		a.fail(w, r, fmt.Errorf("%w: the job queue (set StandbyServiceBus)", replication.ErrNotConfigured))
		return
	}
	dls, err := a.DeadLetters(r.Context(), 100)
	a.answer(w, r, http.StatusOK, apiserver.NewDeadLetterList(dls), err)
}
