// Package fakearm plays Azure Resource Manager's REST protocol over TLS for one test, for the Azure
// adapters' tests (shared/azure/azcompute, shared/azure/azsnapshots): each route answers as ARM documents
// it (status codes, the LRO headers Azure-AsyncOperation and Location, error bodies
// {"error":{"code","message","details"}}). It tests our mapping of ARM's answers, not Azure; the
// contract with the real thing is each adapter's OnAzure test. Every test shape cites its source where
// it is registered.
package fakearm

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/arm"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/cloud"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
)

// Server is the fake ARM of one test.
type Server struct {
	t   *testing.T
	Srv *httptest.Server

	mu     sync.Mutex
	routes map[string]http.HandlerFunc // "METHOD /lowercased/path"
	// under routes every path below a prefix to one handler (OnUnder), for stateful emulations.
	under map[string]http.HandlerFunc // "/lowercased/prefix/"
	calls []Call
}

// Call is one request the server took.
type Call struct {
	Method, Path, APIVersion, Auth string
	Query                          map[string][]string
	Body                           []byte
}

// The test subscription, the token the credential hands out and a SAS signature: none may reach a log.
const (
	Sub    = "00000000-0000-0000-0000-000000000001"
	Token  = "fake-arm-token-must-never-leak"
	SASSig = "sig=SECRETSIGNATURE123"
)

// Credential hands out Token.
type Credential struct{}

func (Credential) GetToken(context.Context, policy.TokenRequestOptions) (azcore.AccessToken, error) {
	return azcore.AccessToken{Token: Token, ExpiresOn: time.Now().Add(time.Hour)}, nil
}

// New starts the server; it is closed when the test ends.
func New(t *testing.T) *Server {
	t.Helper()
	f := &Server{t: t, routes: map[string]http.HandlerFunc{}}
	f.Srv = httptest.NewTLSServer(http.HandlerFunc(f.serve))
	t.Cleanup(f.Srv.Close)
	return f
}

// Options point an ARM client at the server: its TLS client, no retries, no provider registration.
func (f *Server) Options() *arm.ClientOptions {
	return &arm.ClientOptions{
		ClientOptions: policy.ClientOptions{
			Cloud: cloud.Configuration{ActiveDirectoryAuthorityHost: f.Srv.URL, Services: map[cloud.ServiceName]cloud.ServiceConfiguration{
				cloud.ResourceManager: {Endpoint: f.Srv.URL, Audience: "https://management.azure.com"}}},
			Transport: f.Srv.Client(),
			Retry:     policy.RetryOptions{MaxRetries: -1},
		},
		DisableRPRegistration: true,
	}
}

// Logger is a debug logger into the returned buffer; when the test ends, it fails the test if the
// token or the SAS signature reached the log.
func Logger(t *testing.T) (*slog.Logger, *bytes.Buffer) {
	logs := &bytes.Buffer{}
	log := slog.New(slog.NewTextHandler(&lockedWriter{w: logs}, &slog.HandlerOptions{Level: slog.LevelDebug}))
	t.Cleanup(func() {
		if s := logs.String(); strings.Contains(s, "SECRETSIGNATURE") || strings.Contains(s, Token) {
			t.Errorf("a secret reached the log:\n%s", s)
		}
	})
	return log, logs
}

type lockedWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

// On routes METHOD path to h.
func (f *Server) On(method, path string, h http.HandlerFunc) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.routes[method+" "+strings.ToLower(path)] = h
}

// OnUnder routes every request whose path lies below prefix, whatever its method, to h (when no exact
// route of On matches); the longest prefix wins.
func (f *Server) OnUnder(prefix string, h http.HandlerFunc) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.under == nil {
		f.under = map[string]http.HandlerFunc{}
	}
	f.under[strings.ToLower(strings.TrimSuffix(prefix, "/"))+"/"] = h
}

func (f *Server) serve(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	f.mu.Lock()
	f.calls = append(f.calls, Call{Method: r.Method, Path: r.URL.Path, APIVersion: r.URL.Query().Get("api-version"),
		Auth: r.Header.Get("Authorization"), Query: r.URL.Query(), Body: body})
	h := f.routes[r.Method+" "+strings.ToLower(r.URL.Path)]
	if h == nil {
		best := ""
		for prefix, uh := range f.under {
			if strings.HasPrefix(strings.ToLower(r.URL.Path), prefix) && len(prefix) > len(best) {
				best, h = prefix, uh
			}
		}
	}
	f.mu.Unlock()
	if h == nil {
		f.t.Errorf("fake ARM: no route for %s %s", r.Method, r.URL.Path)
		Reply(w, http.StatusNotImplemented, Err("NoRoute", "no route"))
		return
	}
	r.Body = io.NopCloser(bytes.NewReader(body))
	h(w, r)
}

// Called lists "METHOD path" of every request, in order.
func (f *Server) Called() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []string
	for _, c := range f.calls {
		out = append(out, c.Method+" "+c.Path)
	}
	return out
}

// Last is the newest request to METHOD path.
func (f *Server) Last(method, path string) (Call, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for i := len(f.calls) - 1; i >= 0; i-- {
		if c := f.calls[i]; c.Method == method && strings.EqualFold(c.Path, path) {
			return c, true
		}
	}
	return Call{}, false
}

// Reply answers status with body as JSON (none when nil) and the headers given as name, value pairs.
func Reply(w http.ResponseWriter, status int, body any, headers ...string) {
	for i := 0; i+1 < len(headers); i += 2 {
		w.Header().Set(headers[i], headers[i+1])
	}
	if body == nil {
		w.WriteHeader(status)
		return
	}
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(body)
}

// Err is ARM's error body (common-types v5 ErrorResponse): {"error":{"code","message","details"}}.
func Err(code, message string, details ...map[string]any) map[string]any {
	e := map[string]any{"code": code, "message": message}
	if len(details) > 0 {
		e["details"] = details
	}
	return map[string]any{"error": e}
}

// AsyncOp registers an operation status endpoint that answers InProgress n times, then final. The body is
// the Azure-AsyncOperation status resource ({"status": "InProgress"|"Succeeded"|"Failed", "error"}:
// learn.microsoft.com/azure/azure-resource-manager/management/async-operations).
func (f *Server) AsyncOp(path string, inProgress int, final map[string]any) string {
	n := 0
	f.On(http.MethodGet, path, func(w http.ResponseWriter, r *http.Request) {
		if n < inProgress {
			n++
			Reply(w, http.StatusOK, map[string]any{"status": "InProgress"}, "Retry-After", "0")
			return
		}
		Reply(w, http.StatusOK, final)
	})
	return f.Srv.URL + path
}

// LocationOp registers a Location endpoint: 202 while running, then the final status and body (the
// Location protocol of the same page: 202 until done, then 200 with the result or 204).
func (f *Server) LocationOp(path string, inProgress int, status int, body any) string {
	n := 0
	f.On(http.MethodGet, path, func(w http.ResponseWriter, r *http.Request) {
		if n < inProgress {
			n++
			Reply(w, http.StatusAccepted, nil, "Location", f.Srv.URL+path, "Retry-After", "0")
			return
		}
		Reply(w, status, body)
	})
	return f.Srv.URL + path
}

// RGPath is the path of resource group rg1 in the test subscription.
const RGPath = "/subscriptions/" + Sub + "/resourceGroups/rg1"
