package agent

import (
	"context"
	"errors"
	"fmt"
	"os/exec"
	"strings"
	"sync"
	"time"
)

// Hook is a VM's pair of app-consistency commands: Pre quiesces the applications and freezes the file
// systems (fsfreeze, a database's backup mode), Post thaws them. They run through sh -c.
type Hook struct {
	VM   string
	Pre  string
	Post string
}

// Hooks are the group's hooks and how long any one may run.
type Hooks struct {
	VMs     []Hook
	Timeout time.Duration
}

// AppMarker takes an app-consistent marker: every VM's pre hook runs (in parallel, each bounded by the
// timeout), the marker enters the stream while they are all frozen, then every post hook runs. If a
// pre hook fails or hangs, no marker is taken — and the post hooks still run, so no VM stays frozen.
// It returns the marker's sequence (0 when none was taken) and what went wrong.
func (a *Agent) AppMarker(ctx context.Context, hooks Hooks) (int64, error) {
	timeout := hooks.Timeout
	if timeout <= 0 {
		timeout = 30 * time.Second
	}
	// Without a freeze on every VM the marker would only be crash-consistent: refuse rather than
	// label it app-consistent.
	var missing []string
	for _, h := range hooks.VMs {
		if strings.TrimSpace(h.Pre) == "" {
			missing = append(missing, h.VM)
		}
	}
	if len(hooks.VMs) == 0 || len(missing) > 0 {
		return 0, fmt.Errorf("no app-consistent marker: no pre hook for VM(s) %s (every VM needs one)", strings.Join(missing, ", "))
	}
	preErr := runAll(ctx, hooks.VMs, timeout, func(h Hook) string { return h.Pre }, "pre")
	var seq int64
	if preErr == nil {
		seq = a.Marker("app", false)
	}
	postErr := runAll(context.WithoutCancel(ctx), hooks.VMs, timeout, func(h Hook) string { return h.Post }, "post")
	switch {
	case preErr != nil:
		a.cfg.Log.Warn("no app-consistent marker: a pre hook failed; every VM was thawed", "err", preErr, "thawErr", postErr)
		return 0, errors.Join(preErr, postErr)
	case postErr != nil:
		a.cfg.Log.Warn("app-consistent marker taken, but a post hook failed", "seq", seq, "err", postErr)
		return seq, postErr
	}
	a.cfg.Log.Info("app-consistent marker", "seq", seq, "vms", len(hooks.VMs))
	return seq, nil
}

func runAll(ctx context.Context, hooks []Hook, timeout time.Duration, cmdOf func(Hook) string, phase string) error {
	var mu sync.Mutex
	var errs []error
	var wg sync.WaitGroup
	for _, h := range hooks {
		command := strings.TrimSpace(cmdOf(h))
		if command == "" {
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			hctx, cancel := context.WithTimeout(ctx, timeout)
			defer cancel()
			cmd := exec.CommandContext(hctx, "sh", "-c", command)
			cmd.WaitDelay = time.Second
			out, err := cmd.CombinedOutput()
			if hctx.Err() == context.DeadlineExceeded {
				err = fmt.Errorf("timed out after %s", timeout)
			}
			if err != nil {
				mu.Lock()
				errs = append(errs, fmt.Errorf("VM %s %s hook %q: %v: %s", h.VM, phase, command, err, strings.TrimSpace(string(out))))
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	return errors.Join(errs...)
}
