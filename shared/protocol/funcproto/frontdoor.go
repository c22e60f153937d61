package funcproto

import (
	"crypto/subtle"
	"net"
	"net/http"
	"strings"

	"github.com/google/uuid"
)

// The Functions host adds its own headers to every request it sends the handler, invocations and
// forwarded HTTP requests alike (AddHeaders, DefaultHttpWorkerService.cs:159-166 of
// Azure/azure-functions-host@89dc438d): X-Azure-Functions-InvocationId (a GUID, appended after any the
// caller sent: l.164 Headers.Add after ToHttpRequestMessage copied the caller's headers,
// HttpRequestExtensions.cs:162-165), and "Azure-Functions-Host/<version>" added to the User-Agent
// (l.165, HttpWorkerConstants.cs:11). It sends them to http://127.0.0.1:<port> (WorkerConstants.cs:8-9,
// DefaultHttpWorkerService.cs:291-298), and a forwarded request keeps the caller's Host header (the
// copy above). It shares no secret with the handler: the process gets the port, a worker id it never
// sends and the app root (HttpWorkerProcess.cs:58-62), and its HTTP client adds no credential
// (DefaultHttpWorkerService.cs:52-58).
const (
	InvocationIDHeader = "X-Azure-Functions-InvocationId"
	hostUserAgent      = "Azure-Functions-Host/"
	// HostTokenHeader carries HostTokenSetting's value on every request from a host that has one
	// (devhost: a fresh random token per handler start).
	HostTokenHeader = "X-Standby-Host-Token"
	// HostTokenSetting is the environment variable the host side sets with the token.
	HostTokenSetting = "STANDBY_HOST_TOKEN"
)

// Door is what FrontDoor admits.
type Door struct {
	// Token, when set, must come in HostTokenHeader. Azure's host has none to give (above): there the
	// handler's port is reachable only inside the app's sandbox.
	Token string
	// Hosts are the Host headers a request may carry (host:port, any case): the handler's own address
	// (invocations), and the app's public names (forwarded requests keep the caller's Host). A name
	// outside them is a DNS-rebinding page or a request relayed by another local service.
	Hosts []string
}

// DoorFromEnv is the door of a handler listening on port: the token the host side set (then removed
// from the environment, so nothing the handler starts inherits it), the handler's own address, the
// app's default host name (WEBSITE_HOSTNAME, which App Service sets and devhost plays) and the names
// in the StandbyAllowedHosts setting (custom domains, comma-separated). A loopback front door is also
// reached as localhost.
func DoorFromEnv(getenv func(string) string, unsetenv func(string) error, port string) Door {
	d := Door{Token: getenv(HostTokenSetting), Hosts: []string{net.JoinHostPort("127.0.0.1", port)}}
	unsetenv(HostTokenSetting)
	for _, h := range append([]string{getenv("WEBSITE_HOSTNAME")}, strings.Split(getenv("StandbyAllowedHosts"), ",")...) {
		if h = strings.TrimSpace(h); h == "" {
			continue
		}
		d.Hosts = append(d.Hosts, h)
		if name, p, err := net.SplitHostPort(h); err == nil && net.ParseIP(name).IsLoopback() {
			d.Hosts = append(d.Hosts, net.JoinHostPort("localhost", p))
		}
	}
	return d
}

// FrontDoor lets through only requests that carry the host's headers (and its token, when it has
// one) to one of the door's Host names. The handler listens on loopback only; this keeps out the rest
// of what can reach loopback: a web page in a browser on the same machine (it cannot send these headers
// without a CORS preflight, which this refuses too, and a rebinding page names its own host) and a
// request from another local user or service, which has no token.
func FrontDoor(door Door, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ids := r.Header.Values(InvocationIDHeader)
		if len(ids) == 0 || uuid.Validate(ids[len(ids)-1]) != nil || !strings.Contains(r.UserAgent(), hostUserAgent) ||
			(door.Token != "" && subtle.ConstantTimeCompare([]byte(r.Header.Get(HostTokenHeader)), []byte(door.Token)) != 1) {
			http.Error(w, "this port takes invocations from the Functions host only: call the app through the host", http.StatusForbidden)
			return
		}
		if !door.admitsHost(r.Host) {
			http.Error(w, "this app does not answer to host "+quoteHost(r.Host)+": call it by its own name", http.StatusMisdirectedRequest)
			return
		}
		r.Header.Del(HostTokenHeader)
		next.ServeHTTP(w, r)
	})
}

func (d Door) admitsHost(host string) bool {
	for _, h := range d.Hosts {
		if strings.EqualFold(h, host) {
			return true
		}
	}
	return false
}

// quoteHost shows at most 100 bytes of a caller's Host header.
func quoteHost(h string) string {
	if len(h) > 100 {
		h = h[:100] + "…"
	}
	return `"` + strings.ToValidUTF8(h, "?") + `"`
}
