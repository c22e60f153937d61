package funcproto

import (
	"net/http"
	"strings"

	"github.com/google/uuid"
)

// The Functions host adds its own headers to every request it sends the handler, invocations and
// forwarded HTTP requests alike (AddHeaders, DefaultHttpWorkerService.cs:159-166 of
// Azure/azure-functions-host@89dc438d): X-Azure-Functions-InvocationId (a GUID, appended after any the
// caller sent: l.164 Headers.Add after ToHttpRequestMessage copied the caller's headers,
// HttpRequestExtensions.cs:162-165), and "Azure-Functions-Host/<version>" added to the User-Agent
// (l.165, HttpWorkerConstants.cs:11).
const (
	InvocationIDHeader = "X-Azure-Functions-InvocationId"
	hostUserAgent      = "Azure-Functions-Host/"
)

// FrontDoor lets through only requests that carry the host's headers. The handler listens on loopback
// only; this keeps out the rest of what can reach loopback: a web page in a browser on the same machine
// (it cannot send these headers without a CORS preflight, which this refuses too) and a request relayed
// by another local service. It is not a secret: the host holds none it could send.
func FrontDoor(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ids := r.Header.Values(InvocationIDHeader)
		if len(ids) == 0 || uuid.Validate(ids[len(ids)-1]) != nil || !strings.Contains(r.UserAgent(), hostUserAgent) {
			http.Error(w, "this port takes invocations from the Functions host only: call the app through the host", http.StatusForbidden)
			return
		}
		next.ServeHTTP(w, r)
	})
}
