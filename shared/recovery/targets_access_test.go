package recovery

import (
	"context"
	"errors"
	"log/slog"
	"net/netip"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/standby-dr/standby/shared/replication"
	"github.com/standby-dr/standby/shared/standin/memstore"
)

// accessCompute answers the permissions question and records whether anything was made.
type accessCompute struct {
	Compute // unused methods panic
	missing []string
	err     error
	made    bool
}

func (c *accessCompute) MissingActions(context.Context, string, []string) ([]string, error) {
	return c.missing, c.err
}

func (c *accessCompute) EnsureResourceGroup(_ context.Context, name string) (string, error) {
	c.made = true
	return "/subscriptions/s/resourceGroups/" + name, nil
}

// A recovery resource group the app may not deploy to is refused as a bad request naming the group,
// the actions and the role, before anything is made; a group that does not exist yet is left to
// EnsureResourceGroup.
func TestProvisionRefusesAGroupTheAppCannotWrite(t *testing.T) {
	spec := replication.GroupSpec{Target: replication.TargetSpec{ResourceGroup: "someone-elses"}}
	denied := &accessCompute{missing: []string{"Microsoft.Compute/virtualMachines/write"}}
	_, err := TargetSite{Compute: denied}.Provision(context.Background(), "shop", spec)
	if !errors.Is(err, replication.ErrInvalid) || denied.made {
		t.Fatalf("refusal: %v (made %v)", err, denied.made)
	}
	for _, want := range []string{"target.resourceGroup", "someone-elses", "Microsoft.Compute/virtualMachines/write", "Contributor", "StandbyRecoveryResourceGroup"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("the refusal does not name %q: %v", want, err)
		}
	}
	missing := &accessCompute{err: replication.ErrNotFound}
	if _, err := (TargetSite{Compute: missing}).Provision(context.Background(), "shop", spec); err != nil || !missing.made {
		t.Errorf("a group not there yet: %v (made %v)", err, missing.made)
	}
}

// existsCompute says every resource exists (the networks new subnets go into).
type existsCompute struct{ Compute }

func (existsCompute) Exists(context.Context, string) (bool, error) { return true, nil }

// New subnets of an existing network are made one after another: each depends on the one before it in
// the same network, by resourceId of its parameters (the Network RP refuses concurrent changes of one
// network with AnotherOperationInProgress); subnets of different networks do not wait on each other.
func TestNewSubnetsOfANetworkAreChained(t *testing.T) {
	mk := func(vnet, name, prefix string) newSubnet {
		return newSubnet{vnet: vnet, name: name, prefix: netip.MustParsePrefix(prefix)}
	}
	req, created, err := TargetSite{Compute: existsCompute{}}.targetDeployment(context.Background(), "/subscriptions/s/resourceGroups/rg",
		[]newSubnet{mk("prod", "db", "10.1.0.0/24"), mk("prod", "web", "10.1.1.0/24"), mk("test", "db", "10.9.0.0/24"), mk("prod", "app", "10.1.2.0/24")}, nil)
	if err != nil || len(created) != 4 {
		t.Fatalf("%v %v", created, err)
	}
	values := map[string]string{}
	for k, v := range req.Properties.Parameters {
		values[k], _ = v["value"].(string)
	}
	resolve := func(expr string) string { // "[parameters('pN')]" → its value
		return values[strings.TrimSuffix(strings.TrimPrefix(expr, "[parameters('"), "')]")]
	}
	var names, deps []string
	for _, r := range req.Properties.Template.Resources {
		names = append(names, resolve(r["name"].(string)))
		d := ""
		if list, ok := r["dependsOn"].([]any); ok {
			args := regexp.MustCompile(`parameters\('(p\d+)'\)`).FindAllStringSubmatch(list[0].(string), -1)
			d = values[args[0][1]] + "/" + values[args[1][1]]
		}
		deps = append(deps, d)
	}
	if want := []string{"prod/db", "prod/web", "prod/app", "test/db"}; strings.Join(names, " ") != strings.Join(want, " ") {
		t.Fatalf("subnets %v, want %v", names, want)
	}
	if want := []string{"", "prod/db", "prod/web", ""}; strings.Join(deps, " ") != strings.Join(want, " ") {
		t.Errorf("dependsOn %q, want %q", deps, want)
	}
}

// slowCompute's deletes take until their context ends; it has one deployment per VM.
type slowCompute struct {
	Compute
	deletes int
}

func (*slowCompute) Deployment(_ context.Context, rg, name string) (DeploymentStatus, error) {
	return DeploymentStatus{State: DeploymentSucceeded, Resources: []string{"/subscriptions/s/resourceGroups/" + rg + "/providers/Microsoft.Compute/virtualMachines/" + name}}, nil
}

func (c *slowCompute) Delete(ctx context.Context, _ string, ids []string) error {
	c.deletes++
	<-ctx.Done()
	return ctx.Err()
}

// Deletes longer than a step run's budget do not fail the job or run into functionTimeout: the step
// says they go on and asks to run again (every delete is idempotent), with all the VMs' resources in one
// Compute.Delete, which runs them in parallel.
func TestLongDeletesGoOnInLaterStepRuns(t *testing.T) {
	was := deleteBudget
	deleteBudget = 50 * time.Millisecond
	defer func() { deleteBudget = was }()
	compute := &slowCompute{}
	r := &JobRunner{Compute: compute, Log: slog.New(slog.DiscardHandler), Now: time.Now}
	g := &replication.Group{Spec: replication.GroupSpec{VMs: []replication.VMSpec{{Name: "web"}, {Name: "db"}}}}
	g.Record.PartitionKey, g.Record.FailoverJob = "shop", "0123456789abcdef0123456789abcdef"
	n, pending, err := r.deleteVMsOf(context.Background(), g, &Job{Keys: replication.Keys{PartitionKey: g.Record.FailoverJob}})
	if err != nil || !pending || n != 2 || compute.deletes != 1 {
		t.Fatalf("deleted %d, pending %v, %v; %d Delete calls (want 1, both VMs)", n, pending, err, compute.deletes)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, pending, err := r.deleteVMsOf(ctx, g, &Job{Keys: replication.Keys{PartitionKey: g.Record.FailoverJob}}); pending || err == nil {
		t.Errorf("a cancelled step: pending %v, %v; want the cancellation", pending, err)
	}
}

// A stop report waitDrained judged not the agent's is dropped only if it is still the one recorded: a
// newer report the heartbeat recorded meanwhile stays, to be judged at the next poll.
func TestWaitDrainedDropsOnlyTheReportItJudged(t *testing.T) {
	ctx := context.Background()
	state, journal := memstore.NewState(), memstore.NewJournal()
	spec := replication.GroupSpec{VMs: []replication.VMSpec{{Name: "vm", Disks: []replication.DiskSpec{{Name: "d", SizeBytes: 1 << 20, Source: "agent"}}}}}
	spec.Normalize("g1")
	if _, err := replication.CreateGroup(ctx, state, "g1", spec, time.Now()); err != nil {
		t.Fatal(err)
	}
	set := func(seq int64) {
		replication.UpdateGroup(ctx, state, "g1", replication.AllRows, func(g *replication.GroupRecord) error {
			g.StopRequested, g.AgentStoppedSeq, g.Watermark = true, seq, seq
			return nil
		})
	}
	set(5)
	g, _ := replication.LoadGroup(ctx, state, "g1") // the step's view: a report of 5
	journal.Put(ctx, "g1", 7, []byte("a later batch"))
	set(9) // the agent's own report arrives meanwhile
	r := &JobRunner{State: state, Journal: journal, Log: slog.New(slog.DiscardHandler), Now: time.Now}
	j := &Job{Group: "g1", Steps: []JobStep{{Name: "wait-source-drained", Started: time.Now()}}}
	if _, wait, err := waitDrained(ctx, r, j, g); err != nil || wait == 0 {
		t.Fatalf("waitDrained: wait %v, %v", wait, err)
	}
	if now, _ := replication.LoadGroup(ctx, state, "g1"); now.Record.AgentStoppedSeq != 9 {
		t.Errorf("the newer report was dropped: AgentStoppedSeq %d", now.Record.AgentStoppedSeq)
	}
}
