package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"net/http"
	"strings"

	"github.com/standby-dr/standby/shared/api/apiclient"
	"github.com/standby-dr/standby/shared/api/apiv1"
)

// options are every command's flags; each command registers the ones it takes.
type options struct {
	jobType, point, output string
	wait                   bool
	sources                map[string]string
	group, state           string
	limit                  int
}

// call is one command's run: the client, where to write, its arguments and flags.
type call struct {
	cl   *apiclient.Client
	w    io.Writer
	args []string
	o    *options
}

// command is one CLI command: its name, arguments (as usage shows them), what it does, its flags and
// how many arguments it takes (min..max; max < 0: any).
type command struct {
	name, args, summary, detail string
	flags                       []string
	min, max                    int
	run                         func(ctx context.Context, c *call) error
}

// Flag names a command may take.
const (
	flagType, flagPoint, flagWait, flagSource, flagOutput = "type", "point", "wait", "source", "o"
	flagGroup, flagState, flagLimit, flagJobType          = "group", "state", "limit", "job-type"
)

func (c *command) flagSet(o *options) *flag.FlagSet {
	fs := flag.NewFlagSet(c.name, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	o.output = "text"
	for _, f := range c.flags {
		switch f {
		case flagType:
			fs.StringVar(&o.jobType, "type", "test", "failover type: test, planned or unplanned")
		case flagJobType:
			fs.StringVar(&o.jobType, "type", "", "only jobs of this type (test, planned, unplanned, drill, commit, …)")
		case flagPoint:
			fs.StringVar(&o.point, "point", "", "recovery point: latest, latestProcessed, latestAppConsistent, rp-N or an RFC 3339 time")
		case flagWait:
			fs.BoolVar(&o.wait, "wait", false, "follow the job step by step until it ends (a failed job exits 1)")
		case flagOutput:
			fs.StringVar(&o.output, "o", "text", "output: text (tables, summaries) or json (the API's document)")
		case flagGroup:
			fs.StringVar(&o.group, "group", "", "only this group's jobs")
		case flagState:
			fs.StringVar(&o.state, "state", "", "only jobs in this state: Queued, Running, Succeeded or Failed")
		case flagLimit:
			fs.IntVar(&o.limit, "limit", 50, "at most this many (1 to 200)")
		case flagSource:
			fs.Func("source", "where the agent on the failed-over VM reads a disk: vm/disk=file:<device> (repeatable)", func(v string) error {
				key, src, ok := strings.Cut(v, "=")
				if !ok || key == "" || src == "" {
					return fmt.Errorf("want vm/disk=file:<device>, got %q", v)
				}
				o.sources[key] = src
				return nil
			})
		}
	}
	return fs
}

func (c *command) checkArgs(args []string) error {
	if len(args) < c.min || (c.max >= 0 && len(args) > c.max) {
		want := strings.TrimSpace(c.args)
		if want == "" {
			want = "no arguments"
		}
		return usagef(c, "%s takes %s, got %d argument(s)", c.name, want, len(args))
	}
	return nil
}

var commands []*command

func commandsByName() map[string]*command {
	m := map[string]*command{}
	for _, c := range commands {
		m[c.name] = c
	}
	return m
}

func init() {
	read := []string{flagOutput}
	job := func(name, summary string, flags ...string) *command {
		return &command{name: name, args: "GROUP", summary: summary, flags: append(flags, flagWait), min: 1, max: 1,
			run: func(ctx context.Context, c *call) error { return startJob(ctx, c, name, c.args[0]) }}
	}
	commands = []*command{
		{name: "groups", summary: "the groups: state, health, RPO, pending batches, newest point", flags: read, max: 0, run: listGroups},
		{name: "status", args: "GROUP", summary: "a group: state, health with each cause and what to do, RPO, agent, allowed operations", flags: read, min: 1, max: 1, run: groupStatus},
		{name: "points", args: "GROUP", summary: "a group's recovery points, newest first, and the restorable window", flags: read, min: 1, max: 1, run: listPoints},
		{name: "events", args: "GROUP", summary: "a group's history: state changes, alerts, agent events", flags: read, min: 1, max: 1, run: listEvents},
		{name: "jobs", summary: "recent jobs, newest first", flags: []string{flagGroup, flagState, flagJobType, flagLimit, flagOutput}, max: 0, run: listJobs},
		{name: "job", args: "ID", summary: "a job: its steps with times and outcomes, its point and result", flags: []string{flagWait, flagOutput}, min: 1, max: 1, run: showJob},
		job("failover", "fail the group over: a test failover (the default), a planned or an unplanned one", flagType, flagPoint),
		job("change-point", "make a failover's disks and VMs again from another recovery point", flagPoint),
		job("commit", "finalize a failover: the other points go"),
		job("cleanup-test", "remove a test failover's VMs and disks and release its points"),
		job("reprotect", "replicate back from the failed-over VMs to the original disks (through the peer site)", flagSource),
		job("failback", "fail the group back to the original region (a Reprotected group)"),
		{name: "drill", args: "GROUP", summary: "a drill now: a test failover, the drill's checks, and a cleanup that always runs", flags: []string{flagPoint, flagWait}, min: 1, max: 1,
			run: func(ctx context.Context, c *call) error { return startDrill(ctx, c, "/v1/groups/"+c.args[0]) }},
		{name: "drills", args: "GROUP", summary: "a group's drills, newest first", flags: read, min: 1, max: 1,
			run: func(ctx context.Context, c *call) error { return listDrills(ctx, c, "/v1/groups/"+c.args[0]) }},
		{name: "drill-report", args: "GROUP ID", summary: "a drill's report as an auditor keeps it", flags: read, min: 2, max: 2,
			run: func(ctx context.Context, c *call) error {
				return drillReport(ctx, c, "/v1/groups/"+c.args[0], c.args[1])
			}},
		{name: "cancel", args: "JOB", summary: "cancel a drill: it skips to its cleanup", min: 1, max: 1, run: cancelJob},
		{name: "ack", args: "JOB ACTION", summary: "acknowledge a plan job's manual action", min: 2, max: 2, run: ack},
		{name: "plan", args: "SUBCOMMAND PLAN ...", summary: "recovery plans: list | show P | put P FILE | delete P | failover P | cleanup-test P | commit P | drill P | drills P | drill-report P ID",
			detail: "failover takes --type and --point; failover, cleanup-test, commit and drill take --wait; show, list, drills and drill-report take -o.",
			flags:  []string{flagType, flagPoint, flagWait, flagOutput}, min: 1, max: 3, run: planCommand},
	}
}

func cancelJob(ctx context.Context, c *call) error {
	var job apiv1.JobView
	if _, err := c.cl.Do(ctx, http.MethodPost, "/v1/jobs/"+c.args[0]+"/cancel", nil, &job); err != nil {
		return err
	}
	fmt.Fprintf(c.w, "job %s (%s): cancel requested; its cleanup runs next\n", job.ID, job.Type)
	return nil
}

func ack(ctx context.Context, c *call) error {
	_, err := c.cl.Do(ctx, http.MethodPost, "/v1/jobs/"+c.args[0]+"/acknowledge", apiv1.AcknowledgeRequest{Action: c.args[1]}, nil)
	if err == nil {
		fmt.Fprintf(c.w, "job %s: %s acknowledged\n", c.args[0], c.args[1])
	}
	return err
}
