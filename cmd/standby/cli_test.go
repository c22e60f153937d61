package main

import (
	"bytes"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// fakeAPI answers the few routes the tests call, as the API does.
func fakeAPI(t *testing.T) *httptest.Server {
	var polls atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		switch {
		case r.URL.Path == "/api/v1/jobs" && r.URL.Query().Get("state") == "Failed" && r.URL.Query().Get("group") == "g1":
			w.Write([]byte(`{"jobs":[{"id":"0123456789abcdef0123456789abcdef","group":"g1","type":"test","state":"Failed","steps":[]}]}`))
		case r.URL.Path == "/api/v1/groups/g1/commit":
			w.Header().Set("Content-Type", "application/problem+json")
			w.WriteHeader(409)
			w.Write([]byte(`{"status":409,"title":"conflicts with the group's state","detail":"only a FailedOver group can be committed"}`))
		case r.URL.Path == "/api/v1/jobs/0123456789abcdef0123456789abcdef":
			state := "Running"
			if polls.Add(1) > 4 {
				state = "Succeeded"
			}
			w.Write([]byte(`{"id":"0123456789abcdef0123456789abcdef","type":"test","state":"` + state + `","steps":[{"name":"wait-vms","state":"running","outcome":"waiting for web (deploying)"}]}`))
		default:
			http.NotFound(w, r)
		}
	}))
	t.Cleanup(srv.Close)
	t.Setenv("STANDBY_API", srv.URL+"/api")
	return srv
}

func runCLI(args ...string) (string, error) {
	var out bytes.Buffer
	err := run(args, &out)
	return out.String(), err
}

// Help answers at every way of asking; each command lists its own flags only.
func TestHelp(t *testing.T) {
	for _, args := range [][]string{{"help"}, {"-h"}, {"--help"}} {
		if out, err := runCLI(args...); err != nil || !strings.Contains(out, "Commands:") || !strings.Contains(out, "jobs") {
			t.Errorf("%v: %v\n%s", args, err, out)
		}
	}
	out, err := runCLI("failover", "-h")
	if err != nil || !strings.Contains(out, "usage: standby failover GROUP [flags]") || !strings.Contains(out, "-type") || !strings.Contains(out, "-point") ||
		!strings.Contains(out, "-wait") || strings.Contains(out, "-source") || strings.Contains(out, "-o ") {
		t.Errorf("failover -h: %v\n%s", err, out)
	}
	if out, err := runCLI("help", "groups"); err != nil || !strings.Contains(out, "-o string") || strings.Contains(out, "-point") {
		t.Errorf("help groups: %v\n%s", err, out)
	}
}

// A command line the CLI cannot run is a usage error (exit 2); a refusal from the API is not (exit 1).
func TestUsageErrorsAreToldFromFailures(t *testing.T) {
	fakeAPI(t)
	for _, args := range [][]string{{}, {"frobnicate"}, {"status"}, {"status", "a", "b"}, {"groups", "-o", "yaml"}, {"failover", "g1", "--nope"},
		{"plan", "launch", "p"}, {"plan", "show"}, {"help", "frobnicate"}} {
		var usage usageError
		if _, err := runCLI(args...); !errors.As(err, &usage) {
			t.Errorf("%v: %v, want a usage error", args, err)
		}
	}
	var usage usageError
	if _, err := runCLI("commit", "g1"); err == nil || errors.As(err, &usage) || !strings.Contains(err.Error(), "409") {
		t.Errorf("a refused commit: %v", err)
	}
}

// jobs filters by group, state and type, and -o json prints the API's document.
func TestJobsFilterAndJSON(t *testing.T) {
	fakeAPI(t)
	out, err := runCLI("jobs", "--group", "g1", "--state", "Failed")
	if err != nil || !strings.Contains(out, "0123456789abcdef0123456789abcdef") || !strings.Contains(out, "Failed") {
		t.Fatalf("jobs: %v\n%s", err, out)
	}
	out, err = runCLI("jobs", "--group", "g1", "--state", "Failed", "-o", "json")
	if err != nil || !strings.Contains(out, `"jobs": [`) || !strings.Contains(out, `"state": "Failed"`) {
		t.Fatalf("jobs -o json: %v\n%s", err, out)
	}
}

// A followed job that shows nothing new for a while says what it still waits for.
func TestFollowShowsProgressOnLongWaits(t *testing.T) {
	fakeAPI(t)
	stillEvery = 500 * time.Millisecond
	defer func() { stillEvery = 15 * time.Second }()
	out, err := runCLI("job", "0123456789abcdef0123456789abcdef", "--wait")
	if err != nil || !strings.Contains(out, "wait-vms               still running: waiting for web (deploying)") || !strings.Contains(out, "succeeded") {
		t.Fatalf("job --wait: %v\n%s", err, out)
	}
}
