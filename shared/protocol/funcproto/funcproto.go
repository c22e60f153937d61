// Package funcproto is the Azure Functions custom-handler wire protocol: the invocation request the host
// POSTs to /{functionName}, the response it expects back, and decoders for the trigger payloads Standby
// uses (Event Hubs batches, Service Bus messages, timers), and, for devhost (which plays the host
// locally), the builders of those same payloads: one definition of each wire shape serves both sides.
//
// The real host encodes string values inconsistently: a string trigger value or metadata value often
// arrives JSON-encoded twice ("\"abc\""), and metadata arrays arrive as JSON text inside a string. The
// decoders here accept both the double-encoded and the plain forms, so the handler works behind the real
// host and behind devhost alike.
package funcproto

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"
	"time"

	"github.com/google/uuid"
)

// InvokeRequest is the body the host POSTs to the handler for a non-forwarded invocation.
type InvokeRequest struct {
	Data     map[string]json.RawMessage `json:"Data"`
	Metadata map[string]json.RawMessage `json:"Metadata"`
}

// InvokeResponse is what the handler answers. Outputs are keyed by output binding name.
type InvokeResponse struct {
	Outputs     map[string]any `json:"Outputs"`
	Logs        []string       `json:"Logs"`
	ReturnValue any            `json:"ReturnValue,omitempty"`
}

// Sys is Metadata.sys, which the host adds to every invocation.
type Sys struct {
	MethodName string    `json:"MethodName"`
	UtcNow     time.Time `json:"UtcNow"`
	RandGuid   string    `json:"RandGuid"`
}

// NewSys is Metadata.sys of an invocation of function at now, with a fresh RandGuid.
func NewSys(function string, now time.Time) Sys {
	return Sys{MethodName: function, UtcNow: now.UTC(), RandGuid: uuid.NewString()}
}

// The builders (New*Request) produce what the Functions host sends a custom handler, quirks included.
// The host's converter (ScriptInvocationContextExtensions.GetHttpScriptInvocationContextValue,
// Azure/azure-functions-host@89dc438d, src/WebJobs.Script/Workers/MessageExtensions/
// ScriptInvocationContextExtensions.cs:56-82) writes every value that does not serialise to a JSON
// object with JsonConvert.SerializeObject, so strings arrive JSON-encoded a second time ("\"abc\""),
// numbers as strings ("4") and arrays as JSON text inside a string; objects arrive as objects; DateTimes
// are special (dotnet.go). testdata holds the reference requests, each field with its source line
// (testdata/README.md); devhost's TestPayloadsMatchTheHostShapes compares the builders' output with them
// key by key and format by format, and the tests here decode both.

// newRequest starts the request the host sends function at now: no Data yet, Metadata.sys — the
// SystemBindingData object (MethodName = the function's name, UtcNow of kind Utc, RandGuid) every
// invocation carries (Azure/azure-webjobs-sdk@f79ea0bf, src/Microsoft.Azure.WebJobs.Host/Bindings/
// SystemBindingData.cs:17-46, added in FunctionBinding.cs:55-60).
func newRequest(function string, now time.Time) *InvokeRequest {
	sys := NewSys(function, now)
	return &InvokeRequest{Data: map[string]json.RawMessage{}, Metadata: map[string]json.RawMessage{
		"sys": rawJSON(map[string]string{"MethodName": sys.MethodName, "UtcNow": hostTime(sys.UtcNow, layoutUTC), "RandGuid": sys.RandGuid})}}
}

// rawJSON is v as JSON.
func rawJSON(v any) json.RawMessage {
	data, _ := json.Marshal(v)
	return data
}

// jsonText is v's JSON text inside a JSON string: how the host sends string values (JSON-encoded a
// second time) and metadata arrays.
func jsonText(v any) json.RawMessage { return rawJSON(string(rawJSON(v))) }

// data is Data[binding], the trigger's value; an error names it when it is missing.
func data(req *InvokeRequest, binding string) (json.RawMessage, error) {
	raw, ok := req.Data[binding]
	if !ok {
		return nil, fmt.Errorf("Data.%s is missing", binding)
	}
	return raw, nil
}

// MaxRequestBytes bounds an invocation body: an Event Hubs batch of 1 MB events, plus encoding overhead.
const MaxRequestBytes = 256 << 20

// DecodeRequest reads and validates an invocation request. The error says what is wrong with it.
func DecodeRequest(r io.Reader) (*InvokeRequest, error) {
	body, err := io.ReadAll(io.LimitReader(r, MaxRequestBytes+1))
	if err != nil {
		return nil, fmt.Errorf("reading invocation body: %w", err)
	}
	if len(body) > MaxRequestBytes {
		return nil, fmt.Errorf("invocation body exceeds %d bytes", MaxRequestBytes)
	}
	var req InvokeRequest
	dec := json.NewDecoder(bytes.NewReader(body))
	if err := dec.Decode(&req); err != nil {
		return nil, fmt.Errorf("invocation body is not a JSON invocation request: %w", err)
	}
	if dec.More() {
		return nil, errors.New("invocation body has trailing data after the JSON object")
	}
	if req.Data == nil {
		return nil, errors.New("invocation request has no Data object")
	}
	if req.Metadata == nil {
		req.Metadata = map[string]json.RawMessage{}
	}
	return &req, nil
}

// Unwrap returns the JSON value inside raw: when raw is a JSON string whose content is itself JSON (an
// array, an object, or another string), that content; otherwise raw itself. It peels at most two layers,
// which is all the host ever adds.
func Unwrap(raw json.RawMessage) json.RawMessage {
	for i := 0; i < 2; i++ {
		trimmed := bytes.TrimSpace(raw)
		if len(trimmed) == 0 || trimmed[0] != '"' {
			return trimmed
		}
		var s string
		if json.Unmarshal(trimmed, &s) != nil {
			return trimmed
		}
		inner := bytes.TrimSpace([]byte(s))
		if len(inner) == 0 || !json.Valid(inner) || !(inner[0] == '[' || inner[0] == '{' || inner[0] == '"') {
			return trimmed
		}
		raw = inner
	}
	return bytes.TrimSpace(raw)
}

// String decodes a string value that may be JSON-encoded once or twice.
func String(raw json.RawMessage) (string, error) {
	v := Unwrap(raw)
	if len(v) == 0 || string(v) == "null" {
		return "", nil
	}
	var s string
	if err := json.Unmarshal(v, &s); err != nil {
		// A number or bool where a string was expected: keep its text.
		if json.Valid(v) && v[0] != '{' && v[0] != '[' {
			return string(v), nil
		}
		return "", fmt.Errorf("expected a string, got %.40s", v)
	}
	return s, nil
}

// Int decodes an integer that may be a JSON number, a string, or a double-encoded string.
func Int(raw json.RawMessage) (int64, error) {
	s, err := String(raw)
	if err != nil {
		return 0, err
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		return 0, fmt.Errorf("expected an integer, got %q", s)
	}
	return n, nil
}

// Time decodes a time in any form the host writes (with or without a zone; see dotnet.go), JSON-encoded
// once or twice; empty is the zero time.
func Time(raw json.RawMessage) (time.Time, error) {
	s, err := String(raw)
	if err != nil || s == "" {
		return time.Time{}, err
	}
	return parseHostTime(s)
}

// Array decodes a metadata array that may be a JSON array or JSON text of one inside a string.
func Array[T any](raw json.RawMessage) ([]T, error) {
	v := Unwrap(raw)
	if len(v) == 0 || string(v) == "null" {
		return nil, nil
	}
	if v[0] != '[' {
		return nil, fmt.Errorf("expected an array, got %.40s", v)
	}
	var out []T
	if err := json.Unmarshal(v, &out); err != nil {
		return nil, fmt.Errorf("decoding array: %w", err)
	}
	return out, nil
}

// Object decodes a value that may be a JSON object or JSON text of one inside a string.
func Object(raw json.RawMessage, into any) error {
	v := Unwrap(raw)
	if len(v) == 0 || v[0] != '{' {
		return fmt.Errorf("expected an object, got %.40s", v)
	}
	return json.Unmarshal(v, into)
}

// Body returns one event or message body as bytes: a JSON string's content, or other JSON verbatim
// (the host hands over JSON bodies as objects when dataType is not string).
func Body(raw json.RawMessage) ([]byte, error) {
	v := bytes.TrimSpace(raw)
	if len(v) == 0 {
		return nil, errors.New("empty body")
	}
	if v[0] == '"' {
		var s string
		if err := json.Unmarshal(v, &s); err != nil {
			return nil, fmt.Errorf("decoding body string: %w", err)
		}
		return []byte(s), nil
	}
	return []byte(v), nil
}
