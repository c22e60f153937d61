package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"time"

	"github.com/standby-dr/standby/shared/funcproto"
	"github.com/standby-dr/standby/shared/local"
)

// invoke POSTs one invocation to the handler and returns its status and response.
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
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, h.Sup.BaseURL()+"/"+fn.Name, bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	resp, err := h.client.Do(req)
	if err != nil {
		h.logInvocation(fn, 0, time.Since(start), err)
		return 0, nil, err
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	var out funcproto.InvokeResponse
	json.Unmarshal(data, &out)
	for _, line := range out.Logs {
		fmt.Fprintf(h.Out, "[%s] %s\n", fn.Name, line)
	}
	h.logInvocation(fn, resp.StatusCode, time.Since(start), nil)
	if resp.StatusCode/100 == 2 {
		h.publishOutputs(ctx, fn, out.Outputs)
	}
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
				err = br.Send(ctx, b.QueueName, local.Message{Body: []byte(body)})
			} else {
				_, err = br.Publish(ctx, b.EventHubName, "", []local.Event{{Body: []byte(body)}})
			}
			if err != nil {
				h.Log.Error("output binding not published", "function", fn.Name, "binding", b.Name, "err", err)
			}
		}
	}
}
