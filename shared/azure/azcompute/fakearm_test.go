package azcompute

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

// fakeARM plays Azure Resource Manager's REST protocol over TLS for one test: each route answers as ARM
// documents it (status codes, the LRO headers Azure-AsyncOperation and Location, error bodies
// {"error":{"code","message","details"}}). It tests our mapping of ARM's answers, not Azure; the
// contract with the real thing is TestComputeOnAzure. Every test shape cites its source where it is
// registered.
type fakeARM struct {
	t   *testing.T
	srv *httptest.Server

	mu     sync.Mutex
	routes map[string]http.HandlerFunc // "METHOD /lowercased/path"
	calls  []call
}

type call struct {
	Method, Path, APIVersion, Auth string
	Query                          map[string][]string
	Body                           []byte
}

const (
	testSub    = "00000000-0000-0000-0000-000000000001"
	testToken  = "fake-arm-token-must-never-leak"
	testSASSig = "sig=SECRETSIGNATURE123"
)

type fakeCredential struct{}

func (fakeCredential) GetToken(context.Context, policy.TokenRequestOptions) (azcore.AccessToken, error) {
	return azcore.AccessToken{Token: testToken, ExpiresOn: time.Now().Add(time.Hour)}, nil
}

// newFake starts the server and a Compute pointed at it; logs go to the returned buffer, which tests
// search for secrets.
func newFake(t *testing.T) (*fakeARM, *Compute, *bytes.Buffer) {
	t.Helper()
	f := &fakeARM{t: t, routes: map[string]http.HandlerFunc{}}
	f.srv = httptest.NewTLSServer(http.HandlerFunc(f.serve))
	t.Cleanup(f.srv.Close)
	opts := &arm.ClientOptions{
		ClientOptions: policy.ClientOptions{
			Cloud: cloud.Configuration{ActiveDirectoryAuthorityHost: f.srv.URL, Services: map[cloud.ServiceName]cloud.ServiceConfiguration{
				cloud.ResourceManager: {Endpoint: f.srv.URL, Audience: "https://management.azure.com"}}},
			Transport: f.srv.Client(),
			Retry:     policy.RetryOptions{MaxRetries: -1},
		},
		DisableRPRegistration: true,
	}
	c, err := New(testSub, "westeurope", fakeCredential{}, opts)
	if err != nil {
		t.Fatal(err)
	}
	logs := &bytes.Buffer{}
	c.Log = slog.New(slog.NewTextHandler(&lockedWriter{w: logs}, &slog.HandlerOptions{Level: slog.LevelDebug}))
	c.PollInterval = time.Millisecond
	c.HTTP = f.srv.Client()
	t.Cleanup(func() {
		if s := logs.String(); strings.Contains(s, "SECRETSIGNATURE") || strings.Contains(s, testToken) {
			t.Errorf("a secret reached the log:\n%s", s)
		}
	})
	return f, c, logs
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

func (f *fakeARM) on(method, path string, h http.HandlerFunc) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.routes[method+" "+strings.ToLower(path)] = h
}

func (f *fakeARM) serve(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	f.mu.Lock()
	f.calls = append(f.calls, call{Method: r.Method, Path: r.URL.Path, APIVersion: r.URL.Query().Get("api-version"),
		Auth: r.Header.Get("Authorization"), Query: r.URL.Query(), Body: body})
	h := f.routes[r.Method+" "+strings.ToLower(r.URL.Path)]
	f.mu.Unlock()
	if h == nil {
		f.t.Errorf("fake ARM: no route for %s %s", r.Method, r.URL.Path)
		reply(w, http.StatusNotImplemented, armErr("NoRoute", "no route"))
		return
	}
	r.Body = io.NopCloser(bytes.NewReader(body))
	h(w, r)
}

// called lists "METHOD path" of every request, in order.
func (f *fakeARM) called() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []string
	for _, c := range f.calls {
		out = append(out, c.Method+" "+c.Path)
	}
	return out
}

func (f *fakeARM) last(method, path string) (call, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for i := len(f.calls) - 1; i >= 0; i-- {
		if c := f.calls[i]; c.Method == method && strings.EqualFold(c.Path, path) {
			return c, true
		}
	}
	return call{}, false
}

func reply(w http.ResponseWriter, status int, body any, headers ...string) {
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

// armErr is ARM's error body (common-types v5 ErrorResponse): {"error":{"code","message","details"}}.
func armErr(code, message string, details ...map[string]any) map[string]any {
	e := map[string]any{"code": code, "message": message}
	if len(details) > 0 {
		e["details"] = details
	}
	return map[string]any{"error": e}
}

// lro registers an operation status endpoint that answers InProgress n times, then final. The body is
// the Azure-AsyncOperation status resource ({"status": "InProgress"|"Succeeded"|"Failed", "error"}:
// learn.microsoft.com/azure/azure-resource-manager/management/async-operations).
func (f *fakeARM) asyncOp(path string, inProgress int, final map[string]any) string {
	n := 0
	f.on(http.MethodGet, path, func(w http.ResponseWriter, r *http.Request) {
		if n < inProgress {
			n++
			reply(w, http.StatusOK, map[string]any{"status": "InProgress"}, "Retry-After", "0")
			return
		}
		reply(w, http.StatusOK, final)
	})
	return f.srv.URL + path
}

// locationOp registers a Location endpoint: 202 while running, then the final status and body (the
// Location protocol of the same page: 202 until done, then 200 with the result or 204).
func (f *fakeARM) locationOp(path string, inProgress int, status int, body any) string {
	n := 0
	f.on(http.MethodGet, path, func(w http.ResponseWriter, r *http.Request) {
		if n < inProgress {
			n++
			reply(w, http.StatusAccepted, nil, "Location", f.srv.URL+path, "Retry-After", "0")
			return
		}
		reply(w, status, body)
	})
	return f.srv.URL + path
}

const rgPath = "/subscriptions/" + testSub + "/resourceGroups/rg1"

func depPath(name string) string {
	return rgPath + "/providers/Microsoft.Resources/deployments/" + name
}
