package api

import (
	"net/http"

	"github.com/standby-dr/standby/shared/api/apiserver"
	"github.com/standby-dr/standby/shared/api/apiv1"
	"github.com/standby-dr/standby/shared/recovery"
)

// drillOperations serve a group's drills and a plan's alike: start one, list them, read one.
func (a *API) drillOperations(ops map[string]http.HandlerFunc) {
	owner := func(r *http.Request) recovery.DrillOwner {
		return recovery.DrillOwner{Group: r.PathValue("group"), Plan: r.PathValue("plan")}
	}
	for _, base := range []string{"/groups/{group}/drills", "/plans/{plan}/drills"} {
		ops["POST "+base] = func(w http.ResponseWriter, r *http.Request) {
			var req apiv1.DrillRequest
			if err := apiserver.DecodeOptionalBody(r, &req); err != nil {
				a.fail(w, r, err)
				return
			}
			job, err := a.Jobs.StartDrill(r.Context(), owner(r), req.RecoveryPoint)
			a.jobAccepted(w, r, job, err)
		}
		ops["GET "+base] = func(w http.ResponseWriter, r *http.Request) {
			limit, err := apiserver.IntQuery(r.URL.Query(), "limit", 20)
			var drills []recovery.DrillStatus
			if err == nil {
				drills, err = a.Jobs.DrillsOf(r.Context(), owner(r), int(limit))
			}
			a.answer(w, r, http.StatusOK, apiserver.NewDrillList(drills), err)
		}
		ops["GET "+base+"/{id}"] = func(w http.ResponseWriter, r *http.Request) {
			d, err := a.Jobs.DrillOf(r.Context(), owner(r), r.PathValue("id"))
			a.answer(w, r, http.StatusOK, apiserver.NewDrillView(d), err)
		}
	}
}
