package api

import (
	"context"
	"fmt"
	"net/http"

	"github.com/standby-dr/standby/shared/api/apiserver"
	"github.com/standby-dr/standby/shared/api/apiv1"
	"github.com/standby-dr/standby/shared/replication"
)

type roleKey struct{}

// guard lets a request through its role's door: an agent's only with its group's agent key, checked
// here (the host asks no key at that door); a peer's only to the groups the peer site made, and their
// jobs. The host
// has already checked the operator's, reader's and peer's function keys.
func (a *API) guard(role apiv1.Role, h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		var err error
		switch group := r.PathValue("group"); {
		case role == apiv1.RoleAgent:
			err = a.Agents.AuthenticateAgent(r.Context(), group, r.Header.Get(apiv1.AgentKeyHeader))
		case role == apiv1.RolePeer && group != "":
			err = a.Groups.PeerMay(r.Context(), group)
		case role == apiv1.RolePeer && r.PathValue("id") != "":
			err = a.Jobs.Reaches(r.Context(), r.PathValue("id"), a.Groups.PeerMay)
		}
		if err != nil {
			a.fail(w, r, err)
			return
		}
		h(w, r.WithContext(context.WithValue(r.Context(), roleKey{}, role)))
	}
}

// asPrincipal serves a route at the identity door, as the role the caller's app roles give.
func (a *API) asPrincipal(rt apiv1.Route, h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		role, err := apiserver.PrincipalRole(rt, r.Header.Get(apiv1.PrincipalHeader), a.TrustPrincipals)
		if err == nil {
			err = apiserver.RequireJSONWrite(r)
		}
		if err != nil {
			a.fail(w, r, err)
			return
		}
		a.guard(role, h)(w, r)
	}
}

// refuse answers what role's credential does not reach.
func (a *API) refuse(role apiv1.Role) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		a.fail(w, r, fmt.Errorf("%w: a %s's credential does not reach %s %s", replication.ErrForbidden, role, r.Method, r.URL.Path))
	}
}

// roleOf is the role whose door the request came through.
func roleOf(r *http.Request) apiv1.Role {
	role, _ := r.Context().Value(roleKey{}).(apiv1.Role)
	return role
}

// postAgentKey issues (or rotates) the group's agent key; it is shown once.
func (a *API) postAgentKey(w http.ResponseWriter, r *http.Request) {
	key, err := a.Agents.IssueAgentKey(r.Context(), r.PathValue("group"))
	a.answer(w, r, http.StatusOK, apiv1.AgentKeyView{AgentKey: key}, err)
}

func (a *API) getStreamKey(w http.ResponseWriter, r *http.Request) {
	key, err := a.Agents.StreamKeyOf(r.Context(), r.PathValue("group"))
	a.answer(w, r, http.StatusOK, apiv1.StreamKeyView{StreamKey: key}, err)
}
