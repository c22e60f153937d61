package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httputil"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/standby-dr/standby/shared/funcproto"
	"github.com/standby-dr/standby/shared/local"
)

// Host drives the app's triggers against the handler.
type Host struct {
	App      *App
	Sup      *Supervisor
	Log      *slog.Logger
	StateDir string
	Out      io.Writer // the invocation log a person reads

	client  *http.Client
	mu      sync.Mutex
	brokers map[string]*local.Broker
}

// NewHost prepares a host; brokers open lazily from the connection settings.
func NewHost(app *App, sup *Supervisor, log *slog.Logger, stateDir string, out io.Writer) *Host {
	return &Host{App: app, Sup: sup, Log: log, StateDir: stateDir, Out: out,
		client: &http.Client{Timeout: app.Host.functionTimeout}, brokers: map[string]*local.Broker{}}
}

// broker opens the embedded broker a connection setting names.
func (h *Host) broker(setting string) (*local.Broker, error) {
	value, ok := h.App.Values[setting]
	if !ok {
		return nil, fmt.Errorf("connection setting %s is not in local.settings.json Values", setting)
	}
	if !local.IsConnection(value) {
		return nil, fmt.Errorf("connection setting %s is not an embedded broker connection (%s;Path=...): devhost drives triggers from the embedded broker only", setting, local.ConnectionPrefix)
	}
	path, err := local.PathFromConnection(value)
	if err != nil {
		return nil, fmt.Errorf("connection setting %s: %w", setting, err)
	}
	if !filepath.IsAbs(path) {
		path = filepath.Join(h.App.Root, path)
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if b, ok := h.brokers[path]; ok {
		return b, nil
	}
	b, err := local.Open(path)
	if err != nil {
		return nil, err
	}
	h.brokers[path] = b
	return b, nil
}

// Close closes the brokers.
func (h *Host) Close() {
	for _, b := range h.brokers {
		b.Close()
	}
}

// invoke POSTs one invocation to the handler and returns its status and response.
func (h *Host) invoke(ctx context.Context, fn *Function, payload any) (int, *funcproto.InvokeResponse, error) {
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

// Run starts every trigger and the HTTP front door and blocks until ctx ends.
func (h *Host) Run(ctx context.Context, ready chan<- string) error {
	var wg sync.WaitGroup
	var httpFns []*Function
	for _, fn := range h.App.Functions {
		if fn.Disabled {
			continue
		}
		switch fn.Trigger.Type {
		case "timerTrigger":
			wg.Add(1)
			go func() { defer wg.Done(); h.runTimer(ctx, fn) }()
		case "eventHubTrigger":
			br, err := h.broker(fn.Trigger.Connection)
			if err != nil {
				return fmt.Errorf("%s: %w", fn.File, err)
			}
			n, err := br.PartitionCount(ctx, fn.Trigger.EventHubName)
			if err != nil {
				return fmt.Errorf("%s: event hub %s: %w (declare it in the broker config)", fn.File, fn.Trigger.EventHubName, err)
			}
			for p := 0; p < n; p++ {
				wg.Add(1)
				go func() { defer wg.Done(); h.runPartition(ctx, fn, br, p) }()
			}
			wg.Add(1)
			go func() { defer wg.Done(); h.pruneRetention(ctx, br, fn.Trigger.EventHubName) }()
		case "serviceBusTrigger":
			br, err := h.broker(fn.Trigger.Connection)
			if err != nil {
				return fmt.Errorf("%s: %w", fn.File, err)
			}
			lock, sessions, err := br.LockDuration(ctx, fn.Trigger.QueueName)
			if err != nil {
				return fmt.Errorf("%s: queue %s: %w (declare it in the broker config)", fn.File, fn.Trigger.QueueName, err)
			}
			if sessions != fn.Trigger.IsSessionsEnabled {
				return fmt.Errorf("%s: isSessionsEnabled is %v but queue %s has requiresSession %v", fn.File, fn.Trigger.IsSessionsEnabled, fn.Trigger.QueueName, sessions)
			}
			workers := h.App.Host.Extensions.ServiceBus.MaxConcurrentSessions
			for i := 0; i < workers; i++ {
				wg.Add(1)
				go func() { defer wg.Done(); h.runQueueWorker(ctx, fn, br, lock) }()
			}
		case "httpTrigger":
			httpFns = append(httpFns, fn)
		}
	}
	srv := &http.Server{Addr: fmt.Sprintf("127.0.0.1:%d", h.App.HTTPPort), Handler: h.frontDoor(httpFns), ReadHeaderTimeout: 10 * time.Second}
	errc := make(chan error, 1)
	go func() {
		if err := srv.ListenAndServe(); err != nil && !errors.Is(err, http.ErrServerClosed) {
			errc <- err
		}
	}()
	h.printSummary()
	if ready != nil {
		ready <- fmt.Sprintf("http://127.0.0.1:%d", h.App.HTTPPort)
	}
	select {
	case <-ctx.Done():
	case err := <-errc:
		return fmt.Errorf("HTTP front door on port %d: %w", h.App.HTTPPort, err)
	}
	shutdownCtx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	srv.Shutdown(shutdownCtx)
	wg.Wait()
	return nil
}

func (h *Host) printSummary() {
	fmt.Fprintf(h.Out, "\nFunctions (handler %s on port %d):\n", h.Sup.Path, h.Sup.Port)
	for _, fn := range h.App.Functions {
		t := fn.Trigger
		var src string
		switch t.Type {
		case "timerTrigger":
			src = fmt.Sprintf("schedule %q, next %s", t.Schedule, fn.schedule.Next(time.Now()).Format(time.RFC3339))
		case "eventHubTrigger":
			src = fmt.Sprintf("hub %s, consumer group %s, cardinality %s, batch <= %d", t.EventHubName, t.ConsumerGroup, t.Cardinality, h.App.Host.Extensions.EventHubs.MaxEventBatchSize)
			if fn.Retry != nil {
				src += fmt.Sprintf(", retry %s x%d", fn.Retry.Strategy, fn.Retry.MaxRetryCount)
			}
		case "serviceBusTrigger":
			src = fmt.Sprintf("queue %s, sessions %v, %d concurrent sessions", t.QueueName, t.IsSessionsEnabled, h.App.Host.Extensions.ServiceBus.MaxConcurrentSessions)
		case "httpTrigger":
			src = fmt.Sprintf("http://127.0.0.1:%d/api/%s, auth %s", h.App.HTTPPort, t.Route, t.AuthLevel)
		}
		state := ""
		if fn.Disabled {
			state = " (disabled)"
		}
		fmt.Fprintf(h.Out, "  %-10s %-18s %s%s\n", fn.Name, t.Type, src, state)
	}
	fmt.Fprintln(h.Out)
}

// timerStatus is the schedule monitor's record (the real host keeps it in AzureWebJobsStorage).
type timerStatus struct {
	Last        time.Time `json:"Last"`
	Next        time.Time `json:"Next"`
	LastUpdated time.Time `json:"LastUpdated"`
}

func (h *Host) timerStatusFile(fn *Function) string {
	return filepath.Join(h.StateDir, "timers", fn.Name+".json")
}

func (h *Host) runTimer(ctx context.Context, fn *Function) {
	var status timerStatus
	monitor := fn.Trigger.UseMonitor == nil || *fn.Trigger.UseMonitor
	if data, err := os.ReadFile(h.timerStatusFile(fn)); err == nil && monitor {
		json.Unmarshal(data, &status)
	}
	fire := func(scheduled time.Time, pastDue bool) {
		now := time.Now()
		next := fn.schedule.Next(now)
		h.invoke(ctx, fn, timerPayload(fn.Name, fn.Trigger.Name, status.Last, next, pastDue, now))
		status = timerStatus{Last: scheduled, Next: next, LastUpdated: now}
		if monitor {
			os.MkdirAll(filepath.Dir(h.timerStatusFile(fn)), 0o755)
			data, _ := json.Marshal(status)
			os.WriteFile(h.timerStatusFile(fn), data, 0o644)
		}
	}
	now := time.Now()
	switch {
	case monitor && !status.Next.IsZero() && status.Next.Before(now):
		fire(status.Next, true) // a due time passed while the host was down
	case fn.Trigger.RunOnStartup:
		fire(now, false)
	}
	for {
		next := fn.schedule.Next(time.Now())
		select {
		case <-ctx.Done():
			return
		case <-time.After(time.Until(next)):
		}
		fire(next, time.Since(next) > 5*time.Second)
	}
}

// pruneRetention drops events past the hub's retention, as Event Hubs does, once a minute.
func (h *Host) pruneRetention(ctx context.Context, br *local.Broker, hub string) {
	for {
		if n, err := br.PruneEvents(ctx, hub); err != nil && ctx.Err() == nil {
			h.Log.Warn("pruning events", "hub", hub, "err", err)
		} else if n > 0 {
			h.Log.Info("events past retention pruned", "hub", hub, "count", n)
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(time.Minute):
		}
	}
}

// runPartition consumes one partition in order, like the Event Hubs extension: a batch of up to
// maxEventBatchSize events per invocation, checkpointed after the invocation whatever its outcome once
// the function.json retry policy (if any) is exhausted. Only a host that stops mid-batch redelivers it.
func (h *Host) runPartition(ctx context.Context, fn *Function, br *local.Broker, partition int) {
	t := fn.Trigger
	maxBatch := h.App.Host.Extensions.EventHubs.MaxEventBatchSize
	if t.Cardinality == "one" {
		maxBatch = 1
	}
	freq := h.App.Host.Extensions.EventHubs.BatchCheckpointFrequency
	log := h.Log.With("function", fn.Name, "partition", partition)
	after, _, err := br.LoadCheckpoint(ctx, t.EventHubName, t.ConsumerGroup, partition)
	if err != nil {
		log.Error("reading checkpoint", "err", err)
		return
	}
	batches := 0
	for ctx.Err() == nil {
		events, err := br.ReadEvents(ctx, t.EventHubName, partition, after, maxBatch, time.Second)
		if err != nil {
			if ctx.Err() == nil {
				log.Error("reading events", "err", err)
				time.Sleep(time.Second)
			}
			continue
		}
		if len(events) == 0 {
			continue
		}
		var retry *retryContext
		for attempt := 0; ; attempt++ {
			if attempt > 0 {
				retry = &retryContext{RetryCount: attempt, MaxRetryCount: fn.Retry.MaxRetryCount}
			}
			status, _, err := h.invoke(ctx, fn, eventHubPayload(fn.Name, t.Name, t, "localhost", partition, events, retry, time.Now()))
			if ctx.Err() != nil {
				return // stopping mid-batch: no checkpoint, the batch is redelivered on the next start
			}
			if err == nil && status/100 == 2 {
				break
			}
			if !fn.Retry.Allows(attempt + 1) {
				log.Warn("batch failed; checkpointing anyway as the Functions host does", "status", status, "err", err,
					"firstSeq", events[0].SequenceNumber, "lastSeq", events[len(events)-1].SequenceNumber)
				break
			}
			delay := fn.Retry.Delay(attempt + 1)
			log.Warn("batch failed; retrying per policy", "status", status, "err", err, "retry", attempt+1, "delay", delay)
			select {
			case <-ctx.Done():
				return
			case <-time.After(delay):
			}
		}
		last := events[len(events)-1]
		after = last.SequenceNumber
		batches++
		if batches%freq == 0 {
			if err := br.Checkpoint(ctx, t.EventHubName, t.ConsumerGroup, partition, last.SequenceNumber, last.Offset); err != nil {
				log.Error("checkpointing", "err", err)
			}
		}
	}
}

// runQueueWorker receives from the queue (one session at a time when sessions are on), invokes the
// function per message, completes on 2xx and abandons otherwise; locks are renewed during the call.
func (h *Host) runQueueWorker(ctx context.Context, fn *Function, br *local.Broker, lock time.Duration) {
	t := fn.Trigger
	log := h.Log.With("function", fn.Name)
	autoComplete := t.AutoComplete == nil || *t.AutoComplete
	handle := func(m local.ReceivedMessage, renewSession func(context.Context) error) {
		callCtx, stopRenew := context.WithCancel(ctx)
		go func() { // auto lock renewal, bounded by maxAutoLockRenewalDuration
			deadline := time.Now().Add(h.App.Host.lockRenewal)
			for time.Now().Before(deadline) {
				select {
				case <-callCtx.Done():
					return
				case <-time.After(lock / 3):
				}
				br.RenewMessageLock(ctx, t.QueueName, m.LockToken)
				if renewSession != nil {
					renewSession(ctx)
				}
			}
		}()
		status, _, err := h.invoke(ctx, fn, serviceBusPayload(fn.Name, t.Name, m, time.Now()))
		stopRenew()
		if ctx.Err() != nil {
			return // stopping: the lock expires and the message is redelivered
		}
		if err == nil && status/100 == 2 {
			if autoComplete {
				if err := br.Complete(ctx, t.QueueName, m.LockToken); err != nil {
					log.Error("completing message", "messageId", m.MessageID, "err", err)
				}
			}
			return
		}
		log.Warn("message failed; abandoning", "messageId", m.MessageID, "delivery", m.DeliveryCount, "status", status, "err", err)
		if err := br.Abandon(ctx, t.QueueName, m.LockToken); err != nil {
			log.Error("abandoning message", "messageId", m.MessageID, "err", err)
		}
	}
	for ctx.Err() == nil {
		if !t.IsSessionsEnabled {
			msgs, err := br.Receive(ctx, t.QueueName, 1, time.Second)
			if err != nil {
				if ctx.Err() == nil {
					log.Error("receiving", "err", err)
					time.Sleep(time.Second)
				}
				continue
			}
			for _, m := range msgs {
				handle(m, nil)
			}
			continue
		}
		sess, err := br.AcceptNextSession(ctx, t.QueueName, time.Second)
		if errors.Is(err, local.ErrNoSession) || ctx.Err() != nil {
			continue
		}
		if err != nil {
			log.Error("accepting a session", "err", err)
			time.Sleep(time.Second)
			continue
		}
		for ctx.Err() == nil {
			msgs, err := sess.Receive(ctx, 1, h.App.Host.sessionIdle)
			if err != nil || len(msgs) == 0 {
				break // idle or lock lost: release the session for any worker
			}
			handle(msgs[0], sess.Renew)
		}
		sess.Close(context.Background())
	}
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
		http.Error(w, "the handler did not answer: "+err.Error(), http.StatusBadGateway)
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		path := strings.TrimPrefix(r.URL.Path, "/")
		if prefix != "" {
			if !strings.HasPrefix(path, prefix+"/") {
				http.NotFound(w, r)
				return
			}
			path = strings.TrimPrefix(path, prefix+"/")
		}
		for _, fn := range fns {
			if !fn.route.MatchString(path) {
				continue
			}
			if len(fn.Trigger.Methods) > 0 && !containsFold(fn.Trigger.Methods, r.Method) {
				http.Error(w, fmt.Sprintf("method %s is not allowed for function %s", r.Method, fn.Name), http.StatusMethodNotAllowed)
				return
			}
			if fn.Trigger.AuthLevel != "anonymous" {
				key := h.App.Values["DevhostFunctionKey"]
				given := r.Header.Get("x-functions-key")
				if given == "" {
					given = r.URL.Query().Get("code")
				}
				if key == "" || given != key {
					w.Header().Set("WWW-Authenticate", "x-functions-key")
					http.Error(w, fmt.Sprintf("function %s has authLevel %s: send the key (DevhostFunctionKey in local.settings.json) as x-functions-key or ?code=", fn.Name, fn.Trigger.AuthLevel), http.StatusUnauthorized)
					return
				}
			}
			rec := &statusRecorder{ResponseWriter: w, status: 200}
			readyCtx, cancel := context.WithTimeout(r.Context(), 30*time.Second)
			err := h.Sup.WaitReady(readyCtx)
			cancel()
			if err != nil {
				http.Error(w, err.Error(), http.StatusServiceUnavailable)
				return
			}
			if h.App.Host.CustomHandler.EnableForwardingHttpRequest {
				proxy.ServeHTTP(rec, r)
			} else {
				h.invokeHTTP(rec, r, fn)
			}
			fmt.Fprintf(h.Out, "%s Executed '%s' (%s %s -> %d, %dms)\n", time.Now().Format("15:04:05.000"), fn.Name, r.Method, r.URL.Path, rec.status, time.Since(start).Milliseconds())
			return
		}
		http.NotFound(w, r)
	})
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
	headers := map[string][]string(r.Header)
	req := map[string]any{"Url": r.URL.String(), "Method": r.Method, "Query": query, "Headers": headers, "Params": params, "Identities": []any{}, "Body": string(body)}
	payload := map[string]any{"Data": map[string]any{fn.Trigger.Name: req},
		"Metadata": map[string]any{"Query": jsonText(query), "Headers": jsonText(headers), "sys": sysMetadata(fn.Name, time.Now())}}
	status, resp, err := h.invoke(r.Context(), fn, payload)
	if err != nil || resp == nil {
		http.Error(w, fmt.Sprintf("invocation failed: %v", err), http.StatusInternalServerError)
		return
	}
	if status/100 != 2 {
		http.Error(w, strings.Join(resp.Logs, "\n"), http.StatusInternalServerError)
		return
	}
	var res struct {
		StatusCode any               `json:"statusCode"`
		Body       any               `json:"body"`
		Headers    map[string]string `json:"headers"`
	}
	for _, b := range fn.Bindings {
		if b.Type == "http" {
			data, _ := json.Marshal(resp.Outputs[b.Name])
			json.Unmarshal(data, &res)
		}
	}
	for k, v := range res.Headers {
		w.Header().Set(k, v)
	}
	code := http.StatusOK
	switch v := res.StatusCode.(type) {
	case float64:
		code = int(v)
	case string:
		fmt.Sscan(v, &code)
	}
	w.WriteHeader(code)
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
