package api

import (
	"net/http"

	"github.com/standby-dr/standby/shared/api/apiserver"
	"github.com/standby-dr/standby/shared/api/apiv1"
	"github.com/standby-dr/standby/shared/recovery"
)

// planOperations serve the recovery plans and their jobs.
func (a *API) planOperations(ops map[string]http.HandlerFunc) {
	ops["GET /plans"] = func(w http.ResponseWriter, r *http.Request) {
		recs, err := a.Plans.List(r.Context())
		a.answer(w, r, http.StatusOK, apiserver.NewPlanList(recs, a.Now()), err)
	}
	ops["PUT /plans/{plan}"] = func(w http.ResponseWriter, r *http.Request) {
		var spec recovery.PlanSpec
		if err := apiserver.DecodeBody(r, &spec); err != nil {
			a.fail(w, r, err)
			return
		}
		rec, err := a.Plans.Put(r.Context(), r.PathValue("plan"), spec)
		a.answer(w, r, http.StatusOK, apiserver.NewPlanView(rec, a.Now()), err)
	}
	ops["GET /plans/{plan}"] = func(w http.ResponseWriter, r *http.Request) {
		rec, err := a.Plans.Get(r.Context(), r.PathValue("plan"))
		a.answer(w, r, http.StatusOK, apiserver.NewPlanView(rec, a.Now()), err)
	}
	ops["DELETE /plans/{plan}"] = func(w http.ResponseWriter, r *http.Request) {
		if err := a.Plans.Delete(r.Context(), r.PathValue("plan")); err != nil {
			a.fail(w, r, err)
			return
		}
		w.WriteHeader(http.StatusNoContent)
	}
	ops["POST /plans/{plan}/failover"] = func(w http.ResponseWriter, r *http.Request) {
		var req apiv1.FailoverRequest
		if err := apiserver.DecodeBody(r, &req); err != nil {
			a.fail(w, r, err)
			return
		}
		job, err := a.Jobs.StartPlan(r.Context(), recovery.PlanRequest{Plan: r.PathValue("plan"), Type: req.Type, RecoveryPoint: req.RecoveryPoint})
		a.jobAccepted(w, r, job, err)
	}
	for _, jobType := range []string{recovery.JobCleanupTest, recovery.JobCommit} {
		ops["POST /plans/{plan}/"+jobType] = func(w http.ResponseWriter, r *http.Request) {
			job, err := a.Jobs.StartPlan(r.Context(), recovery.PlanRequest{Plan: r.PathValue("plan"), Type: jobType})
			a.jobAccepted(w, r, job, err)
		}
	}
	ops["POST /jobs/{id}/cancel"] = func(w http.ResponseWriter, r *http.Request) {
		job, err := a.Jobs.Cancel(r.Context(), r.PathValue("id"))
		a.answer(w, r, http.StatusOK, apiserver.NewJobView(job), err)
	}
	ops["POST /jobs/{id}/acknowledge"] = func(w http.ResponseWriter, r *http.Request) {
		var req apiv1.AcknowledgeRequest
		if err := apiserver.DecodeBody(r, &req); err != nil {
			a.fail(w, r, err)
			return
		}
		job, err := a.Jobs.Acknowledge(r.Context(), r.PathValue("id"), req.Action)
		a.answer(w, r, http.StatusOK, apiserver.NewJobView(job), err)
	}
}
