// Package apicontract checks the REST API's answers against its OpenAPI 3.1 document (apiv1.OpenAPI)
// with kin-openapi, whose JSON Schema 2020-12 validator nobody here wrote. The tests route every answer
// they receive through it, so the document cannot drift from what the handler sends.
package apicontract

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"mime"
	"net/http"
	"strings"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/standby-dr/standby/shared/api/apiv1"
)

// Checker matches a request to its route the way the handler does (the same ServeMux patterns under
// every door) and validates the answer against that operation's response.
type Checker struct {
	doc *openapi3.T
	mux *http.ServeMux
}

type routeOf struct{ apiv1.Route }

func (routeOf) ServeHTTP(http.ResponseWriter, *http.Request) {}

// New loads and validates the document.
func New() (*Checker, error) {
	loader := openapi3.NewLoader()
	doc, err := loader.LoadFromData(apiv1.OpenAPI())
	if err != nil {
		return nil, fmt.Errorf("loading the OpenAPI document: %w", err)
	}
	if err := doc.Validate(context.Background()); err != nil {
		return nil, fmt.Errorf("the OpenAPI document is not valid: %w", err)
	}
	c := &Checker{doc: doc, mux: http.NewServeMux()}
	doors := []string{apiv1.IdentityDoor}
	for _, role := range apiv1.Roles {
		doors = append(doors, apiv1.Doors[role])
	}
	for _, rt := range apiv1.Routes {
		for _, door := range doors {
			c.mux.Handle(rt.Pattern(door), routeOf{rt})
		}
	}
	return c, nil
}

// Check validates one answer. Requests outside the API, and answers the Functions host made rather
// than the handler (401s and 405s without a JSON body), are not the document's and pass.
func (c *Checker) Check(req *http.Request, status int, header http.Header, body []byte) error {
	h, _ := c.mux.Handler(req)
	rt, ok := h.(routeOf)
	if !ok {
		return nil
	}
	op := c.doc.Paths.Find(rt.Path).GetOperation(rt.Method)
	what := fmt.Sprintf("%s %s → %d", req.Method, req.URL.Path, status)
	media, _, _ := mime.ParseMediaType(header.Get("Content-Type"))
	if !strings.HasSuffix(media, "json") {
		if len(body) > 0 && (status < 400 || status == http.StatusInternalServerError) && status != http.StatusNoContent {
			return fmt.Errorf("%s: a %q body, not JSON", what, media)
		}
		return nil
	}
	resp := op.Responses.Status(status)
	if resp == nil {
		if status < 400 {
			return fmt.Errorf("%s: the document has no %d answer for %s %s", what, status, rt.Method, rt.Path)
		}
		resp = op.Responses.Default()
	}
	mt := resp.Value.Content.Get(media)
	if mt == nil || mt.Schema == nil {
		return fmt.Errorf("%s: the document has no %s body for it", what, media)
	}
	var value any
	if err := json.Unmarshal(body, &value); err != nil {
		return fmt.Errorf("%s: not JSON: %v", what, err)
	}
	if err := mt.Schema.Value.VisitJSON(value, openapi3.EnableJSONSchema2020()); err != nil {
		return fmt.Errorf("%s: the body does not match the document: %v", what, err)
	}
	return nil
}

// CheckRequest validates a request body the API accepted against the operation's request body: the
// document must take whatever the handler takes (a refused request may be malformed on purpose, and
// an operation without a body ignores one).
func (c *Checker) CheckRequest(req *http.Request, body []byte) error {
	h, _ := c.mux.Handler(req)
	rt, ok := h.(routeOf)
	if !ok {
		return nil
	}
	what := fmt.Sprintf("%s %s (request)", req.Method, req.URL.Path)
	rb := c.doc.Paths.Find(rt.Path).GetOperation(rt.Method).RequestBody
	if rb == nil {
		return nil // the operation reads no body: whatever came with the request was ignored
	}
	var value any
	if err := json.Unmarshal(body, &value); err != nil {
		return fmt.Errorf("%s: not JSON: %v", what, err)
	}
	if err := rb.Value.Content.Get("application/json").Schema.Value.VisitJSON(value, openapi3.EnableJSONSchema2020()); err != nil {
		return fmt.Errorf("%s: the body the API took does not match the document: %v", what, err)
	}
	return nil
}

// Transport checks every answer that passes through it, and every request body the API took,
// reporting failures to Report.
type Transport struct {
	Checker *Checker
	Base    http.RoundTripper
	Report  func(error)
}

func (t Transport) RoundTrip(req *http.Request) (*http.Response, error) {
	if !strings.HasPrefix(req.URL.Path, "/api/") {
		return t.Base.RoundTrip(req)
	}
	var sent []byte
	if req.Body != nil && req.Body != http.NoBody {
		var err error
		if sent, err = io.ReadAll(req.Body); err != nil {
			return nil, err
		}
		req.Body.Close()
		req = req.Clone(req.Context())
		req.Body = io.NopCloser(bytes.NewReader(sent))
	}
	resp, err := t.Base.RoundTrip(req)
	if err != nil {
		return resp, err
	}
	body, rerr := readAll(resp)
	if rerr != nil {
		return resp, nil
	}
	if cerr := t.Checker.Check(req, resp.StatusCode, resp.Header, body); cerr != nil {
		t.Report(cerr)
	}
	if resp.StatusCode < 300 && len(sent) > 0 {
		if cerr := t.Checker.CheckRequest(req, sent); cerr != nil {
			t.Report(cerr)
		}
	}
	return resp, nil
}

// readAll reads the answer's body and puts it back for the caller.
func readAll(resp *http.Response) ([]byte, error) {
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	resp.Body = io.NopCloser(bytes.NewReader(body))
	return body, err
}
