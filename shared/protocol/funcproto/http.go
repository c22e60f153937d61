package funcproto

import (
	"encoding/json"
	"fmt"
	"time"
)

// HTTPRequest is an HTTP trigger's value when the host does not forward the request itself
// (customHandler.enableForwardingHttpRequest false).
type HTTPRequest struct {
	URL        string              `json:"Url"`
	Method     string              `json:"Method"`
	Query      map[string]string   `json:"Query"`
	Headers    map[string][]string `json:"Headers"`
	Params     map[string]string   `json:"Params"`
	Identities []any               `json:"Identities"`
	Body       string              `json:"Body"`
}

// NewHTTPRequest is the request the host sends function for r under trigger binding: r as Data, and
// its query and headers again in Metadata as JSON text.
func NewHTTPRequest(function, binding string, r HTTPRequest, now time.Time) *InvokeRequest {
	if r.Identities == nil {
		r.Identities = []any{}
	}
	req := newRequest(function, now)
	req.Data[binding] = rawJSON(r)
	req.Metadata["Query"] = jsonText(r.Query)
	req.Metadata["Headers"] = jsonText(r.Headers)
	return req
}

// HTTPResponse is an http output binding's value in Outputs: the response the host writes.
type HTTPResponse struct {
	StatusCode any               `json:"statusCode"`
	Body       any               `json:"body"`
	Headers    map[string]string `json:"headers"`
}

// DecodeHTTPResponse reads an http output binding's value into r (fields the value lacks are kept).
func DecodeHTTPResponse(value any, r *HTTPResponse) {
	data, _ := json.Marshal(value)
	json.Unmarshal(data, r)
}

// Status is StatusCode as a number (a JSON number or a numeric string); 200 when there is none.
func (r *HTTPResponse) Status() int {
	code := 200
	switch v := r.StatusCode.(type) {
	case float64:
		code = int(v)
	case string:
		fmt.Sscan(v, &code)
	}
	return code
}
