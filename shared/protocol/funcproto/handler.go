package funcproto

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"time"
)

// InvokeFunc runs one invocation. Returning an error of type *BadInput answers 400, any other error
// 500. The host treats both alike (EnsureSuccessStatusCode, DefaultHttpWorkerService.cs:194 of
// Azure/azure-functions-host@89dc438d): it applies the retry policy (Event Hubs) or abandons the message
// (Service Bus), and never reads the body, so the error's text reaches only the handler's own log —
// which is why every failure is logged here before it is answered.
type InvokeFunc func(ctx context.Context, req *InvokeRequest) (*InvokeResponse, error)

// BadInput is an invocation the function cannot process as sent.
type BadInput struct{ Reason string }

func (e *BadInput) Error() string { return e.Reason }

// Handler adapts an InvokeFunc to the custom-handler HTTP contract.
func Handler(log *slog.Logger, function string, fn InvokeFunc) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		req, err := DecodeRequest(r.Body)
		if err != nil {
			log.Warn("malformed invocation", "function", function, "err", err)
			writeJSON(w, http.StatusBadRequest, InvokeResponse{Logs: []string{"malformed invocation: " + err.Error()}})
			return
		}
		resp, err := fn(r.Context(), req)
		var bad *BadInput
		switch {
		case errors.As(err, &bad):
			log.Warn("bad invocation", "function", function, "err", err)
			writeJSON(w, http.StatusBadRequest, InvokeResponse{Logs: []string{"bad invocation: " + err.Error()}})
		case err != nil:
			log.Error("invocation failed", "function", function, "err", err, "ms", time.Since(start).Milliseconds())
			writeJSON(w, http.StatusInternalServerError, InvokeResponse{Logs: []string{"failed: " + err.Error()}})
		default:
			if resp == nil {
				resp = &InvokeResponse{}
			}
			if resp.Outputs == nil {
				resp.Outputs = map[string]any{}
			}
			log.Debug("invocation done", "function", function, "ms", time.Since(start).Milliseconds())
			writeJSON(w, http.StatusOK, resp)
		}
	})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(v)
}
