package api

import (
	"net/http"

	"github.com/standby-dr/standby/shared/apiv1"
)

// agentRoutes serve a group's agents under /api/agent/v1 (the agentapi function: the host asks no
// function key there): each request must carry the group's agent key, and reaches only that group's
// reports and reads. The operator issues the key under /api/v1.
func (a *API) agentRoutes(mux *http.ServeMux) {
	mux.HandleFunc("POST /api/v1/groups/{group}/agent-key", func(w http.ResponseWriter, r *http.Request) {
		key, err := a.Groups.IssueAgentKey(r.Context(), r.PathValue("group"))
		a.answer(w, r, http.StatusOK, apiv1.AgentKeyView{AgentKey: key}, err)
	})
	for pattern, h := range map[string]http.HandlerFunc{
		"GET /api/agent/v1/groups/{group}":                          a.getGroup,
		"POST /api/agent/v1/groups/{group}/agent":                   a.postAgent,
		"GET /api/agent/v1/groups/{group}/disks/{vm}/{disk}/hashes": a.getDiskHashes,
		"POST /api/agent/v1/groups/{group}/events":                  a.postEvent,
		"GET /api/agent/v1/groups/{group}/stream-key":               a.getStreamKey,
	} {
		mux.HandleFunc(pattern, a.asAgent(h))
	}
}

// asAgent lets the request through only with its group's agent key.
func (a *API) asAgent(h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if err := a.Groups.AuthenticateAgent(r.Context(), r.PathValue("group"), r.Header.Get(apiv1.AgentKeyHeader)); err != nil {
			a.fail(w, r, err)
			return
		}
		h(w, r)
	}
}

func (a *API) getStreamKey(w http.ResponseWriter, r *http.Request) {
	g, err := a.Groups.Load(r.Context(), r.PathValue("group"))
	var v apiv1.StreamKeyView
	if err == nil {
		v.StreamKey = g.Record.StreamKey
	}
	a.answer(w, r, http.StatusOK, v, err)
}
