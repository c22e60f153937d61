package recovery_test

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/standby-dr/standby/shared/recovery"
	"github.com/standby-dr/standby/shared/replication"
	"github.com/standby-dr/standby/shared/standin/memstore"
)

// Every invalid plan is refused with the field named, and nothing is stored.
func TestPlanValidation(t *testing.T) {
	ctx := context.Background()
	state := memstore.NewState()
	for name, vms := range map[string][]string{"g1": {"db", "app"}, "g2": {"web"}} {
		spec := replication.GroupSpec{}
		for _, vm := range vms {
			spec.VMs = append(spec.VMs, replication.VMSpec{Name: vm, Disks: []replication.DiskSpec{{Name: "os", SizeBytes: 1 << 20, Source: "agent"}}})
		}
		spec.Normalize(name)
		if _, err := replication.CreateGroup(ctx, state, name, spec, time.Now()); err != nil {
			t.Fatal(err)
		}
	}
	plans := recovery.Plans{State: state, Now: time.Now}
	base := func() recovery.PlanSpec {
		return recovery.PlanSpec{Groups: []string{"g1", "g2"}, BootGroups: []recovery.BootGroup{
			{Name: "db", VMs: []string{"g1/db"}, Post: []recovery.Action{{Name: "ok", Type: recovery.ActionManual}}},
			{Name: "rest", VMs: []string{"g1/app", "g2/web"}, Pre: []recovery.Action{{Name: "hook", Type: recovery.ActionWebhook, URL: "https://example.net/h"}}}}}
	}
	cases := []struct {
		edit func(*recovery.PlanSpec)
		want string
	}{
		{func(p *recovery.PlanSpec) { p.Groups = append(p.Groups, "g3") }, `groups[2]: "g3" is not a group`},
		{func(p *recovery.PlanSpec) { p.Groups = []string{"g1", "g1"} }, `groups[1]: "g1" is not a group, or is named twice`},
		{func(p *recovery.PlanSpec) { p.BootGroups[1].VMs = []string{"g1/app"} }, "bootGroups: g2/web is in no boot group"},
		{func(p *recovery.PlanSpec) { p.BootGroups[1].VMs = append(p.BootGroups[1].VMs, "g1/db") }, "bootGroups[1].vms[2]: g1/db is in boot group db already"},
		{func(p *recovery.PlanSpec) { p.BootGroups[1].VMs[0] = "g3/app" }, `bootGroups[1].vms[0]: "g3/app" is not a VM`},
		{func(p *recovery.PlanSpec) { p.BootGroups[1].Name = "db" }, `bootGroups[1].name: "db" must be`},
		{func(p *recovery.PlanSpec) { p.BootGroups[1].VMs = nil }, "bootGroups[1].vms: a boot group brings up at least one VM"},
		{func(p *recovery.PlanSpec) {
			for i := range 7 {
				p.BootGroups = append(p.BootGroups, recovery.BootGroup{Name: "x" + string(rune('a'+i)), VMs: []string{"g1/db"}})
			}
		}, "bootGroups: 9, want 1 to 7"},
		{func(p *recovery.PlanSpec) { p.BootGroups[1].Pre[0].Name = "ok" }, `bootGroups[1].pre[0].name: "ok" must be`},
		{func(p *recovery.PlanSpec) { p.BootGroups[1].Pre[0].URL = "https://user:pw@example.net/h" }, "bootGroups[1].pre[0].url"},
		{func(p *recovery.PlanSpec) { p.BootGroups[1].Pre[0].URL = "file:///etc/passwd" }, "bootGroups[1].pre[0].url"},
		{func(p *recovery.PlanSpec) { p.BootGroups[1].Pre[0].ExpectStatus = 500 }, "bootGroups[1].pre[0].expectStatus: 500, want a 2xx status"},
		{func(p *recovery.PlanSpec) { p.BootGroups[1].Pre[0].TimeoutSeconds = 301 }, "bootGroups[1].pre[0].timeoutSeconds: 301"},
		{func(p *recovery.PlanSpec) { p.BootGroups[0].Post[0].Type = "runbook" }, `bootGroups[0].post[0].type: "runbook", want webhook, manual or command`},
		{func(p *recovery.PlanSpec) {
			p.BootGroups[1].Pre[0] = recovery.Action{Name: "cmd", Type: recovery.ActionCommand, VM: "g1/app", Command: "true"}
		}, `bootGroups[1].pre[0].vm: "g1/app" is not a VM (group/vm) already up when the action runs`},
		{func(p *recovery.PlanSpec) {
			p.BootGroups[1].Pre[0] = recovery.Action{Name: "cmd", Type: recovery.ActionCommand, VM: "g1/db", Command: " "}
		}, `bootGroups[1].pre[0].command: 1 to 4096 bytes`},
	}
	for _, c := range cases {
		spec := base()
		c.edit(&spec)
		_, err := plans.Put(ctx, "p1", spec)
		if !errors.Is(err, replication.ErrInvalid) || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%v, want %q", err, c.want)
		}
		if _, err := plans.Get(ctx, "p1"); !errors.Is(err, replication.ErrNotFound) {
			t.Fatalf("a refused plan was stored (%v)", err)
		}
	}
	rec, err := plans.Put(ctx, "p1", base())
	if err != nil || rec.Spec.BootGroups[1].Pre[0].TimeoutSeconds != 30 || rec.Spec.BootGroups[1].Pre[0].ExpectStatus != 200 {
		t.Fatalf("a valid plan: %+v, %v", rec.Spec, err)
	}
	if _, err := plans.Put(ctx, "Bad_Name", base()); !errors.Is(err, replication.ErrInvalid) {
		t.Fatalf("a bad plan name: %v", err)
	}
}

// A plan job waits for its manual action until it is acknowledged; only a running plan job's manual
// actions can be acknowledged.
func TestAcknowledgeOnlyRunningPlanJobsManualActions(t *testing.T) {
	f := newJobFixture(t)
	ctx := context.Background()
	plans := recovery.Plans{State: f.state, Now: time.Now}
	if _, err := plans.Put(ctx, "p1", recovery.PlanSpec{Groups: []string{"g1"}, BootGroups: []recovery.BootGroup{
		{Name: "all", VMs: []string{"g1/vm"}, Post: []recovery.Action{{Name: "ok", Type: recovery.ActionManual}}}}}); err != nil {
		t.Fatal(err)
	}
	replication.UpdateGroup(ctx, f.state, "g1", replication.AllRows, func(r *replication.GroupRecord) error { r.LastPointTime = f.point.SourceTime; return nil })
	adm := &recovery.Admission{State: f.state, Pages: f.pages, Jobs: f.q, Now: time.Now, Log: f.runner.Log}
	job, err := adm.StartPlan(ctx, recovery.PlanRequest{Plan: "p1", Type: "unplanned"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := adm.StartPlan(ctx, recovery.PlanRequest{Plan: "p1", Type: "unplanned"}); !errors.Is(err, replication.ErrState) {
		t.Fatalf("a second plan job while one runs: %v", err)
	}
	for range 200 { // run until it waits for the operator
		step := f.take(t)
		if err := f.runner.Run(ctx, step, 1); err != nil {
			t.Fatal(err)
		}
		if j := f.job(t, job.ID()); strings.Contains(j.Steps[len(j.Steps)-1].Outcome, "waiting for an operator") {
			break
		}
	}
	if _, err := adm.Acknowledge(ctx, job.ID(), "nope"); !errors.Is(err, replication.ErrInvalid) {
		t.Fatalf("acknowledging an unknown action: %v", err)
	}
	if _, err := adm.Acknowledge(ctx, job.ID(), "ok"); err != nil {
		t.Fatal(err)
	}
	f.drain(t)
	if j := f.job(t, job.ID()); j.State != recovery.JobSucceeded || !strings.HasPrefix(j.Steps[len(j.Steps)-1].Outcome, "boot group all: post actions done: ok") {
		t.Fatalf("plan job %s %q: %+v", j.State, j.Error, j.Steps[len(j.Steps)-1])
	}
	if _, err := adm.Acknowledge(ctx, job.ID(), "ok"); !errors.Is(err, replication.ErrState) {
		t.Fatalf("acknowledging an ended job: %v", err)
	}
}

// A planned failover ends at the agent's final sequence only when the journal holds no batch past it:
// a stop report below a stored batch is dropped and the job waits for the agent's own.
func TestPlannedFailoverDistrustsAStopBelowTheJournal(t *testing.T) {
	f := newJobFixture(t)
	ctx := context.Background()
	replication.UpdateGroup(ctx, f.state, "g1", replication.AllRows, func(r *replication.GroupRecord) error {
		r.State, r.Watermark = replication.StateProtected, 5
		return nil
	})
	f.journal.Put(ctx, "g1", 7, []byte("a batch the forged report leaves out"))
	job, _ := recovery.NewJob("g1", recovery.JobPlannedFailover, "latestProcessed", time.Now())
	recovery.StartJob(ctx, f.state, f.q, job)
	for range 3 {
		replication.UpdateGroup(ctx, f.state, "g1", replication.AllRows, func(r *replication.GroupRecord) error { r.AgentStoppedSeq = 5; return nil })
		step := f.take(t)
		if err := f.runner.Run(ctx, step, 1); err != nil {
			t.Fatal(err)
		}
	}
	j := f.job(t, job.ID())
	if j.State != recovery.JobRunning || !strings.Contains(j.Steps[1].Outcome, "the reported final sequence 5 is not the agent's (batch 7 exists)") {
		t.Fatalf("job %s, step %+v", j.State, j.Steps[1])
	}
	if g, _ := replication.LoadGroup(ctx, f.state, "g1"); g.Record.AgentStoppedSeq != 0 {
		t.Fatalf("the forged final sequence stayed: %d", g.Record.AgentStoppedSeq)
	}
}

// A plan as the API decodes it: never a panic; a plan Validate accepts places every VM exactly once in
// at most seven boot groups.
func FuzzPlanSpec(f *testing.F) {
	f.Add([]byte(`{"groups":["g1"],"bootGroups":[{"name":"a","vms":["g1/vm"],"post":[{"name":"ok","type":"manual"}]}]}`))
	vms := map[string][]string{"g1": {"vm", "db"}, "g2": {"web"}}
	f.Fuzz(func(t *testing.T, data []byte) {
		var spec recovery.PlanSpec
		if replication.DecodeJSON(data, &spec, "body", "a plan") != nil {
			return
		}
		spec.Normalize()
		if spec.Validate(vms) != nil {
			return
		}
		placed := 0
		for _, b := range spec.BootGroups {
			placed += len(b.VMs)
		}
		want := 0
		for _, g := range spec.Groups {
			want += len(vms[g])
		}
		if len(spec.BootGroups) > recovery.MaxBootGroups || placed != want {
			t.Fatalf("Validate accepted %+v", spec)
		}
	})
}

// Only globally reachable unicast addresses count as public.
func TestPublicAddress(t *testing.T) {
	for _, a := range []string{"127.0.0.1", "10.1.2.3", "172.16.0.1", "192.168.1.1", "169.254.169.254", "168.63.129.16",
		"100.64.0.1", "100.127.255.254", "198.18.0.1", "198.19.255.1", "192.0.0.8", "240.0.0.1", "255.255.255.255", "0.1.2.3",
		"192.0.2.1", "203.0.113.9", "224.0.0.1", "::1", "::", "fe80::1", "fc00::1", "fd12::1", "ff02::1", "::ffff:10.0.0.1",
		"::ffff:168.63.129.16", "64:ff9b::a00:1", "2002:a00:1::1", "2001:db8::1", "::10.0.0.1", "2001::1"} {
		if recovery.PublicAddress(netip.MustParseAddr(a)) {
			t.Errorf("%s counts as public", a)
		}
	}
	for _, a := range []string{"8.8.8.8", "20.50.1.2", "168.63.129.17", "100.128.0.1", "198.20.0.1", "2606:4700::1111", "::ffff:1.1.1.1"} {
		if !recovery.PublicAddress(netip.MustParseAddr(a)) {
			t.Errorf("%s does not count as public", a)
		}
	}
}

// Webhooks go to public addresses only unless private ones are allowed, and follow no redirect.
func TestWebhookClientRefusesPrivateAddresses(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, "http://169.254.169.254/metadata", http.StatusFound)
	}))
	defer srv.Close()
	if _, err := recovery.WebhookClient(false).Post(srv.URL, "application/json", nil); err == nil || !strings.Contains(err.Error(), "is not public") {
		t.Fatalf("a loopback webhook: %v", err)
	}
	resp, err := recovery.WebhookClient(true).Post(srv.URL, "application/json", nil)
	if err != nil || resp.StatusCode != http.StatusFound {
		t.Fatalf("allowed, the redirect is answered, not followed: %v %v", resp, err)
	}
	resp.Body.Close()
}
