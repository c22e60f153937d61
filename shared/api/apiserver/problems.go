package apiserver

import (
	"encoding/json"
	"errors"
	"net/http"
	"strings"

	"github.com/standby-dr/standby/shared/api/apiv1"

	"github.com/standby-dr/standby/shared/replication"
)

// problems maps the domain's errors to statuses and titles, first match first.
var problems = []struct {
	err    error
	status int
	title  string
}{
	{replication.ErrTooLarge, http.StatusRequestEntityTooLarge, "request too large"},
	{ErrNotJSON, http.StatusUnsupportedMediaType, "unsupported media type"},
	{replication.ErrUnauthorized, http.StatusUnauthorized, "unauthorized"},
	{replication.ErrForbidden, http.StatusForbidden, "forbidden"},
	{replication.ErrInvalid, http.StatusBadRequest, "invalid request"},
	{replication.ErrNoGroup, http.StatusNotFound, "not found"},
	{replication.ErrNotFound, http.StatusNotFound, "not found"},
	{replication.ErrState, http.StatusConflict, "conflicts with the group's state"},
	{replication.ErrConflict, http.StatusConflict, "conflict"},
	{replication.ErrNotConfigured, http.StatusServiceUnavailable, "not configured"},
	{replication.ErrUnavailable, http.StatusServiceUnavailable, "storage unavailable"},
}

// StatusOf is the HTTP status and title of a domain error (500 for an error of no known class).
func StatusOf(err error) (int, string) {
	for _, p := range problems {
		if errors.Is(err, p.err) {
			return p.status, p.title
		}
	}
	return http.StatusInternalServerError, "internal error"
}

// WriteProblem answers err as an RFC 7807 problem+json document: its class's status and title, and its
// message without the class's own words, redacted.
func WriteProblem(w http.ResponseWriter, r *http.Request, err error) {
	status, title := StatusOf(err)
	detail := err.Error()
	for _, p := range problems {
		if errors.Is(err, p.err) {
			detail = strings.TrimSuffix(strings.TrimPrefix(detail, p.err.Error()+": "), ": "+p.err.Error())
			break
		}
	}
	w.Header().Set("Content-Type", "application/problem+json")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false) // details quote what was sent, e.g. file:<path>
	enc.Encode(apiv1.Problem{Type: "about:blank", Title: title, Status: status, Detail: replication.Redact(detail), Instance: r.URL.Path})
}
