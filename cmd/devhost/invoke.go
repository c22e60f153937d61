package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"time"

	"github.com/google/uuid"
	"github.com/standby-dr/standby/shared/protocol/funcproto"
	"github.com/standby-dr/standby/shared/standin/broker"
)

// HostVersion is the Functions host version devhost follows (the source it was read from).
const HostVersion = "4.1037.0"

// invoke POSTs one invocation to the handler as the host does (DefaultHttpWorkerService.cs:161-166,
// 179-261 of Azure/azure-functions-host@89dc438d) and returns its status and response:
//   - headers X-Azure-Functions-InvocationId, X-Azure-Functions-HostVersion and User-Agent;
//   - a non-2xx answer fails the invocation, and its body (Logs, Outputs) is never read;
//   - a 2xx answer must be a JSON invocation response, else the invocation fails;
//   - an invocation that outlives functionTimeout restarts the handler, failing every invocation in
//     flight; the host's HTTP client itself waits a minute longer (l.39-49).
func (h *Host) invoke(ctx context.Context, fn *Function, payload *funcproto.InvokeRequest) (int, *funcproto.InvokeResponse, error) {
	readyCtx, cancel := context.WithTimeout(ctx, 30*time.Second)
	err := h.Sup.WaitReady(readyCtx)
	cancel()
	if err != nil {
		return 0, nil, err
	}
	body, err := json.Marshal(payload)
	if err != nil {
		return 0, nil, err
	}
	start := time.Now()
	invocation := uuid.NewString()
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, h.Sup.BaseURL()+"/"+fn.Name, bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json; charset=utf-8")
	req.Header.Set("X-Azure-Functions-InvocationId", invocation)
	req.Header.Set("X-Azure-Functions-HostVersion", HostVersion)
	req.Header.Set("User-Agent", "Azure-Functions-Host/"+HostVersion)
	req.Header.Set(funcproto.HostTokenHeader, h.Sup.Token)
	timeout := time.AfterFunc(h.App.Host.functionTimeout, func() {
		h.Sup.Restart(fmt.Sprintf("invocation %s of %s outlived functionTimeout (%s)", invocation, fn.Name, h.App.Host.functionTimeout))
	})
	resp, err := h.client.Do(req)
	timeout.Stop()
	if err != nil {
		h.logInvocation(fn, 0, time.Since(start), err)
		return 0, nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		h.logInvocation(fn, resp.StatusCode, time.Since(start), nil) // the body is not read: its Logs are lost
		return resp.StatusCode, nil, nil
	}
	data, _ := io.ReadAll(resp.Body)
	var out funcproto.InvokeResponse
	if err := json.Unmarshal(data, &out); err != nil {
		err = fmt.Errorf("invalid invocation response (status %d): %v", resp.StatusCode, err)
		h.logInvocation(fn, resp.StatusCode, time.Since(start), err)
		return 0, nil, err
	}
	for _, line := range out.Logs {
		fmt.Fprintf(h.Out, "[%s] %s\n", fn.Name, line)
	}
	h.logInvocation(fn, resp.StatusCode, time.Since(start), nil)
	h.publishOutputs(ctx, fn, out.Outputs)
	return resp.StatusCode, &out, nil
}

func (h *Host) logInvocation(fn *Function, status int, d time.Duration, err error) {
	outcome := "Succeeded"
	if err != nil || status/100 != 2 {
		outcome = "Failed"
	}
	detail := fmt.Sprintf("status %d", status)
	if err != nil {
		detail = err.Error()
	}
	fmt.Fprintf(h.Out, "%s Executed '%s' (%s, %s, %dms)\n", time.Now().Format("15:04:05.000"), fn.Name, outcome, detail, d.Milliseconds())
}

// publishOutputs sends serviceBus and eventHub output binding values to the broker.
func (h *Host) publishOutputs(ctx context.Context, fn *Function, outputs map[string]any) {
	for _, b := range fn.Bindings {
		if b.Direction != "out" || (b.Type != "serviceBus" && b.Type != "eventHub") {
			continue
		}
		value, ok := outputs[b.Name]
		if !ok || value == nil {
			continue
		}
		items, isList := value.([]any)
		if !isList {
			items = []any{value}
		}
		br, err := h.broker(b.Connection)
		if err != nil {
			h.Log.Error("output binding not published", "function", fn.Name, "binding", b.Name, "err", err)
			continue
		}
		for _, item := range items {
			body, isString := item.(string)
			if !isString {
				data, _ := json.Marshal(item)
				body = string(data)
			}
			if b.Type == "serviceBus" {
				err = br.Send(ctx, b.QueueName, broker.Message{Body: []byte(body)})
			} else {
				_, err = br.Publish(ctx, b.EventHubName, "", []broker.Event{{Body: []byte(body)}})
			}
			if err != nil {
				h.Log.Error("output binding not published", "function", fn.Name, "binding", b.Name, "err", err)
			}
		}
	}
}
