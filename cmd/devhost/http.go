package main

import (
	"context"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httputil"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/standby-dr/standby/shared/protocol/funcproto"
)

// The HTTP trigger: the front door on the app's HTTP port, with the host's route prefix, route
// templates, methods and authLevel keys; requests are forwarded to the handler as they are
// (enableForwardingHttpRequest) or sent as invocations.

func validateHTTP(fn *Function, b *Binding, at string) error {
	switch b.AuthLevel {
	case "anonymous", "function", "admin":
	default:
		return errField(fn.File, at+".authLevel", "%q, want anonymous, function or admin", b.AuthLevel)
	}
	if b.Route == "" {
		b.Route = fn.Name
	}
	re, err := routeRegexp(b.Route)
	if err != nil {
		return errField(fn.File, at+".route", "%v", err)
	}
	fn.route = re
	return nil
}

func (h *Host) describeHTTP(fn *Function) string {
	return fmt.Sprintf("http://127.0.0.1:%d/api/%s, auth %s", h.App.HTTPPort, fn.Trigger.Route, fn.Trigger.AuthLevel)
}

// routeRegexp compiles a Functions route template: literal segments, {name}, {name:constraint}
// (constraint ignored) and a trailing catch-all {*name}.
func routeRegexp(route string) (*regexp.Regexp, error) {
	var b strings.Builder
	b.WriteString("^")
	for i, seg := range strings.Split(strings.Trim(route, "/"), "/") {
		if i > 0 {
			b.WriteString("/")
		}
		switch {
		case strings.HasPrefix(seg, "{*") && strings.HasSuffix(seg, "}"):
			b.WriteString("(?P<" + sanitize(seg[2:len(seg)-1]) + ">.*)")
		case strings.HasPrefix(seg, "{") && strings.HasSuffix(seg, "}"):
			name, _, _ := strings.Cut(strings.TrimSuffix(strings.TrimPrefix(seg, "{"), "}"), ":")
			name = strings.TrimSuffix(name, "?")
			b.WriteString("(?P<" + sanitize(name) + ">[^/]+)")
		case strings.ContainsAny(seg, "{}"):
			return nil, fmt.Errorf("segment %q mixes text and parameters, which devhost does not support", seg)
		default:
			b.WriteString(regexp.QuoteMeta(seg))
		}
	}
	b.WriteString("/?$")
	return regexp.Compile(b.String())
}

func sanitize(name string) string {
	return regexp.MustCompile(`[^A-Za-z0-9_]`).ReplaceAllString(name, "_")
}

// frontDoor serves /api/... like the host: route matching, authLevel keys, then forwarding.
func (h *Host) frontDoor(fns []*Function) http.Handler {
	prefix := "api"
	if p := h.App.Host.Extensions.HTTP.RoutePrefix; p != nil {
		prefix = strings.Trim(*p, "/")
	}
	target, _ := url.Parse(h.Sup.BaseURL())
	proxy := httputil.NewSingleHostReverseProxy(target)
	proxy.ErrorHandler = func(w http.ResponseWriter, r *http.Request, err error) {
		if errors.Is(err, context.DeadlineExceeded) { // the status Azure's front end answers is not documented
			http.Error(w, fmt.Sprintf("no response within %s: Azure ends an HTTP-triggered call after 230 seconds whatever functionTimeout says", h.HTTPCap), http.StatusGatewayTimeout)
			return
		}
		// The handler's own address stays inside: the caller learns only that it did not answer.
		h.Log.Warn("the handler did not answer", "path", r.URL.Path, "err", err)
		http.Error(w, "the handler did not answer", http.StatusBadGateway)
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		path := strings.TrimPrefix(r.URL.Path, "/")
		if prefix != "" {
			if !strings.HasPrefix(path, prefix+"/") {
				http.NotFound(w, r)
				return
			}
			path = strings.TrimPrefix(path, prefix+"/")
		}
		for _, fn := range fns {
			if fn.route.MatchString(path) {
				h.serveFunction(w, r, fn, proxy)
				return
			}
		}
		http.NotFound(w, r)
	})
}

// serveFunction checks the request's method and key against the function's trigger, then hands it to
// the handler once the handler listens, and logs the outcome.
func (h *Host) serveFunction(w http.ResponseWriter, r *http.Request, fn *Function, proxy *httputil.ReverseProxy) {
	start := time.Now()
	if len(fn.Trigger.Methods) > 0 && !containsFold(fn.Trigger.Methods, r.Method) {
		http.Error(w, fmt.Sprintf("method %s is not allowed for function %s", r.Method, fn.Name), http.StatusMethodNotAllowed)
		return
	}
	if fn.Trigger.AuthLevel != "anonymous" {
		// Keys scoped as the host scopes them: a host key (DevhostFunctionKey) opens every function, a
		// function key (DevhostFunctionKey__<function>) only its own ("Authorization scopes
		// (function-level)", learn.microsoft.com/azure/azure-functions/function-keys-how-to).
		given := r.Header.Get("x-functions-key")
		if given == "" {
			given = r.URL.Query().Get("code")
		}
		if !keyOpens(given, h.App.Values["DevhostFunctionKey"], h.App.Values["DevhostFunctionKey__"+fn.Name]) {
			w.Header().Set("WWW-Authenticate", "x-functions-key")
			http.Error(w, fmt.Sprintf("function %s has authLevel %s: send the key (DevhostFunctionKey in local.settings.json) as x-functions-key or ?code=", fn.Name, fn.Trigger.AuthLevel), http.StatusUnauthorized)
			return
		}
	}
	limit := h.bodyLimit()
	if r.ContentLength > limit {
		http.Error(w, fmt.Sprintf("the request body exceeds %d bytes (FUNCTIONS_REQUEST_BODY_SIZE_LIMIT)", limit), http.StatusRequestEntityTooLarge)
		return
	}
	r.Body = http.MaxBytesReader(w, r.Body, limit)
	rec := &statusRecorder{ResponseWriter: w, status: 200}
	readyCtx, cancel := context.WithTimeout(r.Context(), 30*time.Second)
	err := h.Sup.WaitReady(readyCtx)
	cancel()
	if err != nil {
		http.Error(w, err.Error(), http.StatusServiceUnavailable)
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), h.HTTPCap)
	defer cancel()
	r = r.WithContext(ctx)
	if h.App.Host.CustomHandler.EnableForwardingHttpRequest {
		// Forwarded as it came, with the host's own headers added after the caller's (DefaultHttpWorkerService.cs:98,
		// 161-166: Headers.Add appends, UserAgent.ParseAdd adds a product to the caller's User-Agent).
		r.Header.Add(funcproto.InvocationIDHeader, uuid.NewString())
		r.Header.Add("X-Azure-Functions-HostVersion", HostVersion)
		r.Header.Set("User-Agent", strings.TrimSpace(r.UserAgent()+" Azure-Functions-Host/"+HostVersion))
		r.Header.Set(funcproto.HostTokenHeader, h.Sup.Token) // devhost's own: a caller's is replaced
		proxy.ServeHTTP(rec, r)
	} else {
		h.invokeHTTP(rec, r, fn)
	}
	fmt.Fprintf(h.Out, "%s Executed '%s' (%s %s -> %d, %dms)\n", time.Now().Format("15:04:05.000"), fn.Name, r.Method, r.URL.Path, rec.status, time.Since(start).Milliseconds())
}

// invokeHTTP is the non-forwarding path: the request as Data.req, the response from Outputs.res.
func (h *Host) invokeHTTP(w http.ResponseWriter, r *http.Request, fn *Function) {
	body, _ := io.ReadAll(io.LimitReader(r.Body, 100<<20))
	params := map[string]string{}
	if m := fn.route.FindStringSubmatch(strings.TrimPrefix(r.URL.Path, "/api/")); m != nil {
		for i, name := range fn.route.SubexpNames() {
			if name != "" {
				params[name] = m[i]
			}
		}
	}
	query := map[string]string{}
	for k := range r.URL.Query() {
		query[k] = r.URL.Query().Get(k)
	}
	req := funcproto.HTTPRequest{URL: r.URL.String(), Method: r.Method, Query: query, Headers: map[string][]string(r.Header),
		Params: params, Identities: []any{}, Body: string(body)}
	status, resp, err := h.invoke(r.Context(), fn, funcproto.NewHTTPRequest(fn.Name, fn.Trigger.Name, req, time.Now()))
	if err != nil || resp == nil {
		http.Error(w, fmt.Sprintf("invocation failed: %v", err), http.StatusInternalServerError)
		return
	}
	if status/100 != 2 {
		http.Error(w, strings.Join(resp.Logs, "\n"), http.StatusInternalServerError)
		return
	}
	var res funcproto.HTTPResponse
	for _, b := range fn.Bindings {
		if b.Type == "http" {
			funcproto.DecodeHTTPResponse(resp.Outputs[b.Name], &res)
		}
	}
	for k, v := range res.Headers {
		w.Header().Set(k, v)
	}
	w.WriteHeader(res.Status())
	switch b := res.Body.(type) {
	case string:
		io.WriteString(w, b)
	case nil:
	default:
		json.NewEncoder(w).Encode(b)
	}
}

type statusRecorder struct {
	http.ResponseWriter
	status int
}

func (s *statusRecorder) WriteHeader(code int) { s.status = code; s.ResponseWriter.WriteHeader(code) }

func containsFold(list []string, s string) bool {
	for _, v := range list {
		if strings.EqualFold(v, s) {
			return true
		}
	}
	return false
}

// defaultBodyLimit is the Functions host's request body limit unless FUNCTIONS_REQUEST_BODY_SIZE_LIMIT
// sets another: 100 MB (learn.microsoft.com, functions-app-settings, FUNCTIONS_REQUEST_BODY_SIZE_LIMIT).
const defaultBodyLimit = 104857600

func (h *Host) bodyLimit() int64 {
	if n, err := strconv.ParseInt(h.App.Values["FUNCTIONS_REQUEST_BODY_SIZE_LIMIT"], 10, 64); err == nil && n > 0 {
		return n
	}
	return defaultBodyLimit
}

// keyOpens reports whether a given key is one of the keys (empty keys open nothing), in constant time.
func keyOpens(given string, keys ...string) bool {
	ok := false
	for _, k := range keys {
		ok = ok || (k != "" && subtle.ConstantTimeCompare([]byte(given), []byte(k)) == 1)
	}
	return ok
}
