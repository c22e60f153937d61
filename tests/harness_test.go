// Package tests holds the end-to-end and fault tests that cross processes: devhost, the handler (or a
// fault-injecting test handler), the embedded broker file shared between them, and Azurite.
package tests

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/standby-dr/standby/shared/standin/broker"
	"github.com/standby-dr/standby/shared/testkit/apicontract"
)

var binDir string

// stagedApp is the function app as make package stages it (host.json, <function>/function.json, the
// static linux/amd64 bin/handler): the tests run what ships.
var stagedApp string

// contractViolations collects every answer of the API, from any test, that its OpenAPI document does
// not describe: the tests' HTTP calls all go through a transport that checks them (apicontract).
var contractViolations violations

type violations struct {
	mu   sync.Mutex
	errs []string
}

func (v *violations) add(err error) {
	v.mu.Lock()
	defer v.mu.Unlock()
	v.errs = append(v.errs, err.Error())
}

func (v *violations) list() []string {
	v.mu.Lock()
	defer v.mu.Unlock()
	return append([]string(nil), v.errs...)
}

func TestMain(m *testing.M) {
	checker, err := apicontract.New()
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	http.DefaultTransport = apicontract.Transport{Checker: checker, Base: http.DefaultTransport, Report: contractViolations.add}
	dir, err := os.MkdirTemp("", "standby-tests-bin")
	if err != nil {
		panic(err)
	}
	binDir = dir
	if out, err := exec.Command("../scripts/package.sh", filepath.Join(dir, "dist")).CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "packaging the app: %v\n%s", err, out)
		os.Exit(1)
	}
	stagedApp = filepath.Join(dir, "dist", "app")
	for name, pkg := range map[string]string{"devhost": "../cmd/devhost", "agent": "../cmd/agent", "verify": "../cmd/verify", "standby": "../cmd/standby", "testhandler": "./testhandler"} {
		// The agent's local build (-tags standin) writes to the embedded broker; the others need no tag.
		out, err := exec.Command("go", "build", "-tags", "standin", "-o", filepath.Join(dir, name), pkg).CombinedOutput()
		if err != nil {
			fmt.Fprintf(os.Stderr, "building %s: %v\n%s", name, err, out)
			os.Exit(1)
		}
	}
	code := m.Run()
	os.RemoveAll(dir)
	if n := len(contractViolations.list()); n > 0 {
		fmt.Fprintf(os.Stderr, "%d answers of the API do not match its OpenAPI document:\n%s\n", n, strings.Join(contractViolations.list(), "\n"))
		code = 1
	}
	os.Exit(code)
}

func freePort(t testing.TB) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// appSpec describes a function app for one test.
type appSpec struct {
	handler   string            // binary in binDir
	functions map[string]string // name -> function.json
	values    map[string]string
	broker    broker.Config
	// noForwarding turns enableForwardingHttpRequest off: HTTP requests travel as Data.req.
	noForwarding bool
	// functionTimeout replaces host.json's (a .NET TimeSpan, e.g. "00:00:03").
	functionTimeout string
}

// testApp is a running devhost with its app directory.
type testApp struct {
	dir, brokerPath string
	port            int
	cmd             *exec.Cmd
	out             *syncBuffer
	done            chan error
}

func writeJSON(t testing.TB, path string, v any) {
	t.Helper()
	os.MkdirAll(filepath.Dir(path), 0o755)
	data, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
}

// newApp writes the app (the staged host.json, with the handler swapped in when the spec names another
// than the staged one) and returns its dir.
func newApp(t testing.TB, spec appSpec) *testApp {
	t.Helper()
	dir := t.TempDir()
	var host map[string]any
	data, _ := os.ReadFile(filepath.Join(stagedApp, "host.json"))
	json.Unmarshal(data, &host)
	handler := filepath.Join(binDir, spec.handler)
	if spec.handler == "handler" {
		handler = filepath.Join(stagedApp, "bin", "handler")
	}
	host["customHandler"].(map[string]any)["description"].(map[string]any)["defaultExecutablePath"] = handler
	host["customHandler"].(map[string]any)["enableForwardingHttpRequest"] = !spec.noForwarding
	if spec.functionTimeout != "" {
		host["functionTimeout"] = spec.functionTimeout
	}
	writeJSON(t, filepath.Join(dir, "host.json"), host)
	for name, fj := range spec.functions {
		os.MkdirAll(filepath.Join(dir, name), 0o755)
		if err := os.WriteFile(filepath.Join(dir, name, "function.json"), []byte(fj), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	app := &testApp{dir: dir, brokerPath: filepath.Join(dir, "broker.db"), port: freePort(t)}
	values := map[string]string{"StandbyEventHubs": "UseEmbeddedBroker=true;Path=broker.db", "StandbyServiceBus": "UseEmbeddedBroker=true;Path=broker.db",
		"DevhostFunctionKey": "test-key"}
	for k, v := range spec.values {
		values[k] = v
	}
	writeJSON(t, filepath.Join(dir, "local.settings.json"), map[string]any{"IsEncrypted": false, "Values": values, "Host": map[string]any{"LocalHttpPort": app.port}})
	writeJSON(t, filepath.Join(dir, "broker.json"), spec.broker)
	return app
}

// setValues adds settings to a written app's local.settings.json (before it starts).
func (a *testApp) setValues(t testing.TB, values map[string]string) {
	t.Helper()
	path := filepath.Join(a.dir, "local.settings.json")
	var ls map[string]any
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	json.Unmarshal(data, &ls)
	for k, v := range values {
		ls["Values"].(map[string]any)[k] = v
	}
	writeJSON(t, path, ls)
}

func repoFunction(t testing.TB, name string) string {
	data, err := os.ReadFile(filepath.Join(stagedApp, name, "function.json"))
	if err != nil {
		t.Fatal(err)
	}
	return string(data)
}

type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// start runs devhost on the app until the test ends.
func (a *testApp) start(t testing.TB, env ...string) {
	t.Helper()
	a.out = &syncBuffer{}
	a.cmd = exec.Command(filepath.Join(binDir, "devhost"), "run", "-app", a.dir, "-broker-config", "broker.json", "-state", "state")
	a.cmd.Env = append(os.Environ(), env...)
	a.cmd.Stdout, a.cmd.Stderr = a.out, a.out
	a.cmd.WaitDelay = 5 * time.Second // a handler orphaned by a killed devhost must not hold the test up
	if err := a.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	a.done = make(chan error, 1)
	go func() { a.done <- a.cmd.Wait() }()
	t.Cleanup(func() { a.stop(t) })
	waitFor(t, 30*time.Second, "devhost to listen", func() bool {
		resp, err := http.Get(fmt.Sprintf("http://127.0.0.1:%d/", a.port))
		if err == nil {
			resp.Body.Close()
		}
		return err == nil
	})
}

func (a *testApp) stop(t testing.TB) {
	if a.cmd == nil || a.cmd.Process == nil {
		return
	}
	a.cmd.Process.Signal(os.Interrupt)
	select {
	case <-a.done:
	case <-time.After(20 * time.Second):
		a.cmd.Process.Kill()
		<-a.done
	}
	a.cmd = nil
	if t.Failed() {
		t.Logf("devhost output:\n%s", a.out.String())
	}
}

func (a *testApp) broker(t testing.TB) *broker.Broker {
	t.Helper()
	b, err := broker.Open(a.brokerPath)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	return b
}

// call makes an API request through devhost's front door.
func (a *testApp) call(t testing.TB, method, path, key, body string) (int, http.Header, string) {
	t.Helper()
	req, _ := http.NewRequest(method, fmt.Sprintf("http://127.0.0.1:%d%s", a.port, path), strings.NewReader(body))
	if key != "" {
		req.Header.Set("x-functions-key", key)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header, string(data)
}

func waitFor(t testing.TB, limit time.Duration, what string, ok func() bool) {
	t.Helper()
	deadline := time.Now().Add(limit)
	for !ok() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", limit, what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// invocation is one line the test handler records.
type invocation struct {
	PID           int     `json:"pid"`
	Function      string  `json:"function"`
	Phase         string  `json:"phase"`
	Seqs          []int64 `json:"seqs"`
	RetryCount    int     `json:"retryCount"`
	MessageID     string  `json:"messageId"`
	DeliveryCount int64   `json:"deliveryCount"`
}

func readInvocations(t testing.TB, dir string) []invocation {
	t.Helper()
	f, err := os.Open(filepath.Join(dir, "invocations.jsonl"))
	if err != nil {
		return nil
	}
	defer f.Close()
	var out []invocation
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		var inv invocation
		if json.Unmarshal(sc.Bytes(), &inv) == nil {
			out = append(out, inv)
		}
	}
	return out
}

func itoa(n int) string { return fmt.Sprint(n) }

func sha256hex(b []byte) string {
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}

// readTruthFile reads an agent's ground truth: sequence → disk → sha256.
func readTruthFile(path string) (map[int64]map[string]string, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	out := map[int64]map[string]string{}
	for _, line := range strings.Split(strings.TrimSpace(string(data)), "\n") {
		var rec struct {
			Seq   int64             `json:"seq"`
			Disks map[string]string `json:"disks"`
		}
		if err := json.Unmarshal([]byte(line), &rec); err != nil {
			return nil, err
		}
		out[rec.Seq] = rec.Disks
	}
	return out, nil
}
