package api

import (
	"fmt"
	"net/http"
	"regexp"

	"github.com/standby-dr/standby/shared/replication"
)

// readable are the reads a reader's key opens (the reader function: GET only, its own function keys,
// which the host accepts for that function alone): status, points, history, jobs and plans — never a
// stream key or a disk's hashes.
var readable = regexp.MustCompile(`^(health|groups|groups/[a-z0-9-]+(/recovery-points|/events)?|jobs/[0-9a-f]{32}|jobs/dead-letters|plans|plans/[a-z0-9-]+)$`)

// readOnly serves GET /api/read/v1/<path> as GET /api/v1/<path> when the path is one a reader may read.
func (a *API) readOnly(mux *http.ServeMux) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		path := r.PathValue("path")
		if !readable.MatchString(path) {
			a.fail(w, r, fmt.Errorf("%w: a reader's key reads status, points, history, jobs and plans; not %s", replication.ErrUnauthorized, path))
			return
		}
		read := r.Clone(r.Context())
		read.URL.Path, read.URL.RawPath = "/api/v1/"+path, ""
		mux.ServeHTTP(w, read)
	}
}
