// Package api is the HTTP-triggered function that serves the REST surface for the portal, the operator
// CLI and automation. The host forwards requests as they are (enableForwardingHttpRequest), so this is a
// plain net/http handler under /api/v1/: each route decodes, makes one domain call and encodes. Errors
// are RFC 7807 problem+json.
package api

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"time"

	"github.com/standby-dr/standby/shared/api/apiserver"
	"github.com/standby-dr/standby/shared/api/apiv1"
	"github.com/standby-dr/standby/shared/recovery"
	"github.com/standby-dr/standby/shared/replication"
)

// API is the api function.
type API struct {
	Groups *replication.Groups
	Agents *replication.Agents
	Points *replication.Points
	Jobs   *recovery.Admission
	Plans  recovery.Plans
	// DeadLetters reads the job queue's dead-letter queue (nil: not configured).
	DeadLetters func(ctx context.Context, max int) ([]apiv1.DeadLetterView, error)
	Probes      []replication.Probe
	// TrustPrincipals: App Service authentication is on, so the identity door's principal header is its.
	TrustPrincipals bool
	Log             *slog.Logger
	Now             func() time.Time
}

// Handler returns the routes: each of apiv1.Routes under the door of every role it allows, behind
// that role's guard; anything else under a door is refused, naming what the role may do.
func (a *API) Handler() http.Handler {
	ops := a.operations()
	mux := http.NewServeMux()
	if len(ops) != len(apiv1.Routes) {
		panic(fmt.Sprintf("the api function has %d operations, apiv1.Routes %d routes", len(ops), len(apiv1.Routes)))
	}
	for _, rt := range apiv1.Routes {
		if ops[rt.Key()] == nil {
			panic("apiv1.Routes has " + rt.Key() + ", the api function no operation for it")
		}
		for _, role := range apiv1.Roles {
			if rt.Allows(role) {
				mux.HandleFunc(rt.Pattern(apiv1.Doors[role]), a.guard(role, ops[rt.Key()]))
			} else { // declared, so that no wider pattern of the door (/jobs/{id}) takes it
				mux.HandleFunc(rt.Pattern(apiv1.Doors[role]), a.refuse(role))
			}
		}
	}
	for _, rt := range apiv1.Routes {
		mux.HandleFunc(rt.Pattern(apiv1.IdentityDoor), a.asPrincipal(rt, ops[rt.Key()]))
	}
	for _, role := range apiv1.Roles[1:] {
		mux.HandleFunc(apiv1.Doors[role]+"/", a.refuse(role))
	}
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		a.fail(w, r, fmt.Errorf("%w: %s %s is not part of the API", replication.ErrNotFound, r.Method, r.URL.Path))
	})
	return mux
}

// operations are the handlers of apiv1.Routes, by route key.
func (a *API) operations() map[string]http.HandlerFunc {
	ops := map[string]http.HandlerFunc{
		"GET /health": a.health, "GET /openapi.json": a.openAPI, "GET /groups": a.listGroups, "PUT /groups/{group}": a.putGroup,
		"GET /groups/{group}": a.getGroup, "DELETE /groups/{group}": a.deleteGroup,
		"POST /groups/{group}/agent": a.postAgent, "POST /groups/{group}/agent-key": a.postAgentKey,
		"POST /groups/{group}/resync": a.postResync, "POST /groups/{group}/seed": a.postSeed,
		"GET /groups/{group}/stream-key": a.getStreamKey, "GET /groups/{group}/disks/{vm}/{disk}/hashes": a.getDiskHashes,
		"GET /groups/{group}/recovery-points": a.getPoints, "GET /groups/{group}/rpo-history": a.getRPOHistory,
		"POST /groups/{group}/events": a.postEvent,
		"GET /groups/{group}/events":  a.getEvents, "POST /groups/{group}/failover": a.postFailover,
		"POST /groups/{group}/change-recovery-point": a.postChangePoint, "POST /groups/{group}/reprotect": a.postReprotect,
		"GET /jobs": a.listJobs, "GET /jobs/dead-letters": a.getDeadLetters, "GET /jobs/{id}": a.getJob,
	}
	for _, jobType := range []string{recovery.JobCleanupTest, recovery.JobCommit, recovery.JobFailback} {
		ops["POST /groups/{group}/"+jobType] = func(w http.ResponseWriter, r *http.Request) {
			a.startJob(w, r, recovery.Request{Type: jobType})
		}
	}
	a.planOperations(ops)
	a.drillOperations(ops)
	return ops
}

// fail answers a domain call's error as problem+json; an error of no known class is logged (it is ours).
func (a *API) fail(w http.ResponseWriter, r *http.Request, err error) {
	if status, _ := apiserver.StatusOf(err); status == http.StatusInternalServerError {
		a.Log.Error("request failed", "path", r.URL.Path, "err", err)
	}
	apiserver.WriteProblem(w, r, err)
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

// openAPI answers the API's OpenAPI 3.1 document.
func (a *API) openAPI(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	w.Write(openAPIDocument)
}

var openAPIDocument = apiv1.OpenAPI()

func (a *API) health(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), 5*time.Second)
	defer cancel()
	v, code := apiserver.NewHealthView(replication.RunProbes(ctx, a.Probes))
	a.answer(w, r, code, v, nil)
}
