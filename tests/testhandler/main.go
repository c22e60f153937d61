// Command testhandler is a custom handler for devhost's fault tests: it records every invocation it
// receives (with its own pid) to $TESTHANDLER_DIR/invocations.jsonl, hangs during one Event Hubs
// invocation when $TESTHANDLER_DIR/hang-once exists (so a test can kill -9 it mid-invocation), and
// fails every Service Bus invocation with 500 (so a test can watch redelivery and dead-lettering) unless
// $TESTHANDLER_DIR/jobs-ok exists; then it succeeds, after hanging once when jobs-sleep-once exists.
package main

import (
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/standby-dr/standby/shared/protocol/funcproto"
)

type record struct {
	PID           int     `json:"pid"`
	Function      string  `json:"function"`
	Phase         string  `json:"phase"`
	Seqs          []int64 `json:"seqs,omitempty"`
	RetryCount    int     `json:"retryCount"`
	MessageID     string  `json:"messageId,omitempty"`
	DeliveryCount int64   `json:"deliveryCount,omitempty"`
}

var mu sync.Mutex

func write(dir string, r record) {
	mu.Lock()
	defer mu.Unlock()
	f, err := os.OpenFile(filepath.Join(dir, "invocations.jsonl"), os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o644)
	if err != nil {
		return
	}
	defer f.Close()
	r.PID = os.Getpid()
	data, _ := json.Marshal(r)
	f.Write(append(data, '\n'))
	f.Sync()
}

func main() {
	dir := os.Getenv("TESTHANDLER_DIR")
	mux := http.NewServeMux()
	mux.HandleFunc("POST /events", func(w http.ResponseWriter, r *http.Request) {
		req, err := funcproto.DecodeRequest(r.Body)
		if err != nil {
			http.Error(w, err.Error(), 400)
			return
		}
		batch, err := funcproto.DecodeEventHubBatch(req, "events")
		if err != nil {
			http.Error(w, err.Error(), 400)
			return
		}
		rec := record{Function: "events", Phase: "start"}
		if batch.Retry != nil {
			rec.RetryCount = batch.Retry.RetryCount
		}
		for _, e := range batch.Events {
			rec.Seqs = append(rec.Seqs, e.SequenceNumber)
		}
		write(dir, rec)
		if os.Remove(filepath.Join(dir, "hang-once")) == nil {
			time.Sleep(time.Minute)
		}
		rec.Phase = "end"
		write(dir, rec)
		w.Write([]byte(`{"Outputs":{},"Logs":["ok"]}`))
	})
	mux.HandleFunc("POST /jobs", func(w http.ResponseWriter, r *http.Request) {
		req, err := funcproto.DecodeRequest(r.Body)
		if err != nil {
			http.Error(w, err.Error(), 400)
			return
		}
		msg, err := funcproto.DecodeServiceBusMessage(req, "job")
		if err != nil {
			http.Error(w, err.Error(), 400)
			return
		}
		rec := record{Function: "jobs", Phase: "start", MessageID: msg.MessageID, DeliveryCount: msg.DeliveryCount}
		write(dir, rec)
		if _, err := os.Stat(filepath.Join(dir, "jobs-ok")); err != nil {
			http.Error(w, `{"Logs":["this step always fails"]}`, 500)
			return
		}
		if os.Remove(filepath.Join(dir, "jobs-sleep-once")) == nil {
			time.Sleep(time.Minute)
		}
		rec.Phase = "end"
		write(dir, rec)
		w.Write([]byte(`{"Outputs":{},"Logs":["done"]}`))
	})
	// echo is an HTTP function behind a host that does not forward requests: it answers through
	// Outputs.res and also emits a queue message through a serviceBus output binding.
	mux.HandleFunc("POST /echo", func(w http.ResponseWriter, r *http.Request) {
		req, err := funcproto.DecodeRequest(r.Body)
		if err != nil {
			http.Error(w, err.Error(), 400)
			return
		}
		var in struct {
			Method string            `json:"Method"`
			Body   string            `json:"Body"`
			Params map[string]string `json:"Params"`
		}
		if err := funcproto.Object(req.Data["req"], &in); err != nil {
			http.Error(w, err.Error(), 400)
			return
		}
		resp := funcproto.InvokeResponse{Outputs: map[string]any{
			"res":    map[string]any{"statusCode": 201, "body": in.Method + " " + in.Params["name"] + " " + in.Body, "headers": map[string]string{"X-Echo": "yes"}},
			"outbox": []any{map[string]any{"echoed": in.Body}, "second"},
		}, Logs: []string{"echoed"}}
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(resp)
	})
	http.ListenAndServe("127.0.0.1:"+os.Getenv("FUNCTIONS_CUSTOMHANDLER_PORT"), mux)
}
