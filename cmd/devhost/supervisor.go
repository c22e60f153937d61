package main

import (
	"context"
	"crypto/rand"
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"syscall"
	"time"

	"github.com/google/uuid"

	"github.com/standby-dr/standby/shared/protocol/funcproto"
)

// Supervisor runs the custom handler as the Functions host does: on a port it picks, with the app
// settings in its environment, restarted when it dies, stopped with SIGTERM then SIGKILL.
type Supervisor struct {
	Path string
	Args []string
	Dir  string
	Env  []string
	Port int
	// Token is sent with every request to the handler (funcproto.HostTokenHeader) and given to it in
	// its environment: a fresh one per devhost start, so no other local process can call the handler.
	Token string
	Log   *slog.Logger

	mu       sync.Mutex
	proc     *os.Process
	restarts int
}

// FreePort asks the kernel for an unused loopback port.
func FreePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// NewSupervisor prepares the handler of the app.
func NewSupervisor(app *App, log *slog.Logger) (*Supervisor, error) {
	desc := app.Host.CustomHandler.Description
	path := desc.DefaultExecutablePath
	if !filepath.IsAbs(path) {
		path = filepath.Join(app.Root, path)
	}
	if _, err := os.Stat(path); err != nil {
		return nil, fmt.Errorf("host.json: customHandler.description.defaultExecutablePath: %v (build it with `make build`)", err)
	}
	dir := app.Root
	if desc.WorkingDirectory != "" {
		dir = filepath.Join(app.Root, desc.WorkingDirectory)
	}
	// Not the front door's own port: it may still be free now (devhost binds it later), and a handler
	// "listening" there would be devhost itself, forwarding every invocation to itself until its
	// headers outgrow the limit (431).
	port, err := FreePort()
	for err == nil && port == app.HTTPPort {
		port, err = FreePort()
	}
	if err != nil {
		return nil, err
	}
	env := os.Environ()
	for k, v := range app.Values {
		env = append(env, k+"="+v)
	}
	// The variables the host sets for the handler (HttpWorkerProcess.cs:58-62).
	env = append(env, "FUNCTIONS_CUSTOMHANDLER_PORT="+strconv.Itoa(port), "FUNCTIONS_HTTPWORKER_PORT="+strconv.Itoa(port),
		"FUNCTIONS_CUSTOMHANDLER_WORKER_ID="+uuid.NewString(), "FUNCTIONS_HTTPWORKER_ID="+uuid.NewString(), "FUNCTIONS_APP_ROOT_PATH="+app.Root)
	// What App Service adds (its default host name) and what devhost adds that Azure's host has not.
	if _, ok := app.Values["WEBSITE_HOSTNAME"]; !ok {
		env = append(env, "WEBSITE_HOSTNAME=127.0.0.1:"+strconv.Itoa(app.HTTPPort))
	}
	token := rand.Text()
	env = append(env, funcproto.HostTokenSetting+"="+token)
	return &Supervisor{Path: path, Args: desc.Arguments, Dir: dir, Env: env, Port: port, Token: token, Log: log}, nil
}

// Run keeps the handler running until ctx ends, then stops it.
func (s *Supervisor) Run(ctx context.Context) {
	backoff := 200 * time.Millisecond
	for ctx.Err() == nil {
		cmd := exec.Command(s.Path, s.Args...)
		cmd.Dir, cmd.Env = s.Dir, s.Env
		cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
		// The handler must not outlive devhost, even when devhost is killed with SIGKILL.
		cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
		started := time.Now()
		if err := cmd.Start(); err != nil {
			s.Log.Error("handler did not start", "path", s.Path, "err", err)
		} else {
			s.mu.Lock()
			s.proc = cmd.Process
			s.mu.Unlock()
			s.Log.Info("handler started", "pid", cmd.Process.Pid, "port", s.Port)
			done := make(chan error, 1)
			go func() { done <- cmd.Wait() }()
			select {
			case err := <-done:
				s.mu.Lock()
				s.proc, s.restarts = nil, s.restarts+1
				s.mu.Unlock()
				s.Log.Warn("handler exited; restarting", "err", err, "restarts", s.restarts)
			case <-ctx.Done():
				cmd.Process.Signal(syscall.SIGTERM)
				select {
				case <-done:
				case <-time.After(10 * time.Second):
					cmd.Process.Kill()
					<-done
				}
				s.Log.Info("handler stopped")
				return
			}
		}
		if time.Since(started) > 10*time.Second {
			backoff = 200 * time.Millisecond
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(backoff):
		}
		if backoff < 5*time.Second {
			backoff *= 2
		}
	}
}

// Restart kills the running handler (the loop in Run starts a new one), as the host does when an
// invocation outlives functionTimeout: it disposes of the one HTTP worker channel, which kills the
// process and fails every invocation in flight, of every function (Azure/azure-functions-host@89dc438d,
// src/WebJobs.Script.WebHost/WebScriptHostExceptionHandler.cs:28-65,
// src/WebJobs.Script/Workers/Http/HttpFunctionInvocationDispatcher.cs:131-157,209-214,
// src/WebJobs.Script/Workers/ProcessManagement/WorkerProcess.cs:254-269).
func (s *Supervisor) Restart(reason string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.proc != nil {
		s.Log.Warn("restarting the handler", "reason", reason, "pid", s.proc.Pid)
		s.proc.Kill()
	}
}

// PID is the running handler's process id (0 when down).
func (s *Supervisor) PID() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.proc == nil {
		return 0
	}
	return s.proc.Pid
}

// WaitReady waits until the handler accepts connections.
func (s *Supervisor) WaitReady(ctx context.Context) error {
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(s.Port))
	for {
		conn, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			conn.Close()
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("handler not listening on %s: %w", addr, ctx.Err())
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// BaseURL is where the handler listens.
func (s *Supervisor) BaseURL() string { return "http://127.0.0.1:" + strconv.Itoa(s.Port) }
