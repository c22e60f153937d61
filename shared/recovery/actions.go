package recovery

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/standby-dr/standby/shared/replication"
)

// Actions between boot groups. A webhook is POSTed once it is due and marked done in the job's work
// when it answered as expected; a step redelivered after the POST but before the mark sends it again,
// with the same X-Standby-Delivery id, so a receiver can tell. A manual action waits, polling, until
// an operator acknowledges it (Admission.Acknowledge marks it in the job's work).

// WebhookPayload is the JSON body a webhook action receives.
type WebhookPayload struct {
	Plan      string    `json:"plan"`
	Job       string    `json:"job"`
	JobType   string    `json:"jobType"`
	BootGroup string    `json:"bootGroup"`
	Phase     string    `json:"phase"` // pre or post
	Action    string    `json:"action"`
	VMs       []string  `json:"vms"` // the VMs up so far, group/vm
	Time      time.Time `json:"time"`
}

// Webhook headers: the body's HMAC-SHA256 with the app's StandbyWebhookSecret, hex, as "sha256=<hex>";
// the delivery's id (job/action), the same for every attempt.
const (
	SignatureHeader = "X-Standby-Signature"
	DeliveryHeader  = "X-Standby-Delivery"
)

// Sign is a webhook body's signature header value.
func Sign(secret, body []byte) string {
	mac := hmac.New(sha256.New, secret)
	mac.Write(body)
	return "sha256=" + hex.EncodeToString(mac.Sum(nil))
}

func (r *JobRunner) runActions(ctx context.Context, j *Job, b BootGroup, phase string, actions []Action) (string, time.Duration, error) {
	var done []string
	for _, a := range actions {
		if j.Work.ActionDone(a.Name) != "" {
			done = append(done, a.Name)
			continue
		}
		switch a.Type {
		case ActionManual:
			if j.Work.Ack(a.Name) == "" {
				what := fmt.Sprintf("boot group %s: waiting for an operator to acknowledge %s (POST /api/v1/jobs/%s/acknowledge {\"action\":%q})", b.Name, a.Name, j.ID(), a.Name)
				if a.Instructions != "" {
					what += ": " + a.Instructions
				}
				return what, r.poll(j, time.Second), nil
			}
			j.Work.SetActionDone(a.Name, "acknowledged "+j.Work.Ack(a.Name))
		case ActionWebhook:
			status, err := r.callWebhook(ctx, j, b, phase, a)
			if err != nil {
				return "", 0, permanentError{fmt.Errorf("boot group %s %s action %s: %v", b.Name, phase, a.Name, err)}
			}
			how := fmt.Sprintf("answered %d", status)
			j.Work.SetActionDone(a.Name, how)
			// One webhook per step run, kept before the next is called: each waits up to its 300 s
			// bound, a step run must stay far under functionTimeout, and a redelivery calls none again.
			return fmt.Sprintf("boot group %s: %s action %s: %s", b.Name, phase, a.Name, how), time.Millisecond, nil
		case ActionCommand:
			how, err := r.runCommandAction(ctx, j, a)
			if err != nil {
				return "", 0, fmt.Errorf("boot group %s %s action %s: %w", b.Name, phase, a.Name, err)
			}
			j.Work.SetActionDone(a.Name, how)
			j.Result = withResult(j.Result, "action:"+a.Name, how)
			// One command per step run: each is bounded by its own timeout, the step by a function's.
			return fmt.Sprintf("boot group %s: %s action %s: %s", b.Name, phase, a.Name, how), time.Millisecond, nil
		}
		done = append(done, a.Name)
	}
	if len(done) == 0 {
		return fmt.Sprintf("boot group %s: no %s actions", b.Name, phase), 0, nil
	}
	return fmt.Sprintf("boot group %s: %s actions done: %s", b.Name, phase, strings.Join(done, ", ")), 0, nil
}

// runCommandAction runs a command action in its VM; an exit code other than the expected one fails
// the plan job, with the end of the output.
func (r *JobRunner) runCommandAction(ctx context.Context, j *Job, a Action) (string, error) {
	if r.Compute == nil {
		return "", permanentError{errors.New("no compute configured to run the command on")}
	}
	vms, err := r.bootGroupVMs(ctx, j, BootGroup{Name: "action " + a.Name, VMs: []string{a.VM}})
	if err != nil {
		return "", err
	}
	v := vms[0]
	out, err := r.Compute.RunCommand(ctx, resourceGroupOf(v.group), vmName(&v.job, v.vm.Name), Command{Script: a.Command, Timeout: time.Duration(a.TimeoutSeconds) * time.Second})
	switch {
	case refusedRun(err):
		return "", permanentError{fmt.Errorf("in %s: %v", a.VM, err)}
	case err != nil:
		return "", err // the compute failed: the step is tried again
	case out.TimedOut:
		return "", permanentError{fmt.Errorf("in %s: timed out after %d s: %s", a.VM, a.TimeoutSeconds, boundedOutput(out.Output))}
	case out.ExitCode != a.ExpectExitCode:
		return "", permanentError{fmt.Errorf("in %s: exit code %d, expected %d: %s", a.VM, out.ExitCode, a.ExpectExitCode, boundedOutput(out.Output))}
	}
	return fmt.Sprintf("ran in %s: exit code %d: %s", a.VM, out.ExitCode, strings.TrimSpace(boundedOutput(out.Output))), nil
}

// callWebhook POSTs the signed payload and checks the answer's status; an error says what came back.
func (r *JobRunner) callWebhook(ctx context.Context, j *Job, b BootGroup, phase string, a Action) (int, error) {
	if len(r.WebhookSecret) == 0 {
		return 0, errors.New("webhooks are signed with StandbyWebhookSecret, which is not set")
	}
	p := WebhookPayload{Plan: j.Plan, Job: j.ID(), JobType: j.Type, BootGroup: b.Name, Phase: phase, Action: a.Name, Time: r.Now().UTC(), VMs: []string{}}
	for k := range j.Result {
		if vm, ok := strings.CutPrefix(k, "vm:"); ok {
			p.VMs = append(p.VMs, vm)
		}
	}
	body, _ := json.Marshal(p)
	ctx, cancel := context.WithTimeout(ctx, time.Duration(a.TimeoutSeconds)*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, a.URL, bytes.NewReader(body))
	if err != nil {
		return 0, err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set(SignatureHeader, Sign(r.WebhookSecret, body))
	req.Header.Set(DeliveryHeader, j.ID()+"/"+a.Name)
	client := r.HTTP
	if client == nil {
		client = http.DefaultClient
	}
	resp, err := client.Do(req)
	if err != nil {
		return 0, fmt.Errorf("POST %s: %v", RedactURL(a.URL), err)
	}
	defer resp.Body.Close()
	answer, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
	if resp.StatusCode != a.ExpectStatus {
		return resp.StatusCode, fmt.Errorf("POST %s answered %d, expected %d: %s", RedactURL(a.URL), resp.StatusCode, a.ExpectStatus, strings.TrimSpace(string(answer)))
	}
	r.Log.Info("webhook action done", "job", j.ID(), "plan", j.Plan, "action", a.Name, "status", resp.StatusCode)
	return resp.StatusCode, nil
}

// RedactURL drops a URL's query (it may carry a token) from what is logged or reported.
func RedactURL(u string) string {
	if i := strings.IndexAny(u, "?#"); i >= 0 {
		return replication.Redact(u[:i]) + "?…"
	}
	return replication.Redact(u)
}

// Acknowledge records an operator's acknowledgement of a manual action of a running plan job.
func (a *Admission) Acknowledge(ctx context.Context, jobID, action string) (Job, error) {
	if !ValidJobID(jobID) {
		return Job{}, fmt.Errorf("%w: job id %q is not 32 hex digits", replication.ErrInvalid, jobID)
	}
	return replication.Mutate(ctx, a.State, JobsTable, jobID, JobRow, func(j *Job, found bool) error {
		if !found {
			return fmt.Errorf("job %s: %w", jobID, replication.ErrNotFound)
		}
		if j.Plan == "" || j.Terminal() {
			return fmt.Errorf("%w: job %s is not a running plan job", replication.ErrState, jobID)
		}
		rec, err := Plans{State: a.State, Now: a.Now}.Get(ctx, j.Plan)
		if err != nil {
			return err
		}
		if !rec.Spec.hasManual(action) {
			return fmt.Errorf("%w: action: plan %s has no manual action %q", replication.ErrInvalid, j.Plan, action)
		}
		if j.Work == nil {
			j.Work = JobWork{}
		}
		if j.Work.Ack(action) != "" {
			return replication.ErrUnchanged
		}
		j.Work.SetAck(action, a.Now())
		return nil
	})
}

// Cancel asks a running job with a cleanup (a drill) to stop: its next step run skips to the cleanup,
// which runs whole, and the job ends Failed, "cancelled by the operator". A job without a cleanup is
// not cancelled (ErrState): a failover stopped halfway would leave its group between states.
func (a *Admission) Cancel(ctx context.Context, jobID string) (Job, error) {
	if !ValidJobID(jobID) {
		return Job{}, fmt.Errorf("%w: job id %q is not 32 hex digits", replication.ErrInvalid, jobID)
	}
	if a.Jobs == nil {
		return Job{}, fmt.Errorf("%w: the job queue (set StandbyServiceBus)", replication.ErrNotConfigured)
	}
	j, err := replication.Mutate(ctx, a.State, JobsTable, jobID, JobRow, func(j *Job, found bool) error {
		switch {
		case !found:
			return fmt.Errorf("job %s: %w", jobID, replication.ErrNotFound)
		case j.Terminal():
			return fmt.Errorf("%w: job %s has ended (%s)", replication.ErrState, jobID, j.State)
		case !slices.ContainsFunc(j.Steps, func(s JobStep) bool { return s.Always }):
			return fmt.Errorf("%w: a %s job has no cleanup to stop into: only drills are cancelled (a test failover is undone by its cleanup job)", replication.ErrState, j.Type)
		case j.CancelRequested:
			return replication.ErrUnchanged
		}
		j.CancelRequested, j.UpdatedAt = true, a.Now().UTC()
		return nil
	})
	if err != nil {
		return j, err
	}
	// The step may wait a minute for its next poll: a message now makes the cancel take effect at once
	// (the step's current message, when it comes, finds the job moved on).
	if err := sendStepAs(ctx, a.Jobs, j, j.Next, time.Time{}, "-cancel"); err != nil {
		return j, err
	}
	a.Log.Info("job cancel requested", "job", jobID, "group", j.Group, "plan", j.Plan)
	return j, nil
}

func (p PlanSpec) hasManual(name string) bool {
	for _, b := range p.BootGroups {
		for _, a := range append(append([]Action{}, b.Pre...), b.Post...) {
			if a.Name == name && a.Type == ActionManual {
				return true
			}
		}
	}
	return false
}

// notGlobal are the global-unicast-looking ranges that are not globally reachable: Azure's platform
// address (its wire server and DNS, 168.63.129.16), and the IANA special-purpose registries' entries
// marked "Globally Reachable: False" (RFC 6890 and its updates) that net/netip does not already exclude.
var notGlobal = func() []netip.Prefix {
	var ps []netip.Prefix
	for _, p := range []string{
		"168.63.129.16/32", // Azure's platform address
		"0.0.0.0/8", "100.64.0.0/10", "192.0.0.0/24", "192.0.2.0/24", "192.88.99.0/24", "198.18.0.0/15",
		"198.51.100.0/24", "203.0.113.0/24", "240.0.0.0/4",
		"::/96",        // IPv4-compatible addresses
		"64:ff9b::/96", // NAT64: an IPv4 address (a private one among them) behind a translator
		"64:ff9b:1::/48", "100::/64", "2001::/23", "2001:db8::/32", "2002::/16", "3fff::/20", "5f00::/16", "fec0::/10",
	} {
		ps = append(ps, netip.MustParsePrefix(p))
	}
	return ps
}()

// PublicAddress reports whether ip is a global unicast address that is globally reachable: not
// loopback, private, link-local (the instance metadata service at 169.254.169.254 among them),
// multicast, unspecified, shared (carrier-grade NAT), reserved, for documentation or benchmarks, a
// translation or tunnel prefix, or Azure's platform address.
func PublicAddress(ip netip.Addr) bool {
	ip = ip.Unmap()
	if !ip.IsGlobalUnicast() || ip.IsPrivate() {
		return false
	}
	for _, p := range notGlobal {
		if p.Contains(ip) {
			return false
		}
	}
	return true
}

// WebhookClient is the HTTP client plan webhooks go out with. Unless private is set it dials public
// addresses only (PublicAddress), checked on the address actually dialled, so a name that resolves
// elsewhere later is refused too; and it follows no redirect.
func WebhookClient(private bool) *http.Client {
	dialer := &net.Dialer{Timeout: 10 * time.Second, Control: func(_, address string, _ syscall.RawConn) error {
		host, _, err := net.SplitHostPort(address)
		if err != nil {
			return err
		}
		ip, err := netip.ParseAddr(host)
		if err != nil {
			return err
		}
		if !private && !PublicAddress(ip) {
			return fmt.Errorf("webhook address %s is not public (StandbyWebhookAllowPrivate allows it)", ip.Unmap())
		}
		return nil
	}}
	// net/http's DefaultTransport settings, without its proxy, and not cloned from it: a process may have
	// replaced the default transport (the tests check the API's answers through theirs).
	transport := &http.Transport{DialContext: dialer.DialContext, ForceAttemptHTTP2: true, MaxIdleConns: 100,
		IdleConnTimeout: 90 * time.Second, TLSHandshakeTimeout: 10 * time.Second, ExpectContinueTimeout: time.Second}
	return &http.Client{Transport: transport, Timeout: 5 * time.Minute,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
}
