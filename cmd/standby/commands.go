package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/standby-dr/standby/shared/api/apiv1"
)

// read gets a resource; with -o json it prints the API's document as it came and returns false, so
// the caller prints text only when asked for it.
func read(ctx context.Context, c *call, path string, into any) (text bool, err error) {
	var raw json.RawMessage
	if _, err := c.cl.Do(ctx, http.MethodGet, path, nil, &raw); err != nil {
		return false, err
	}
	if c.o.output == "json" {
		var v any
		json.Unmarshal(raw, &v)
		out, _ := json.MarshalIndent(v, "", "  ")
		fmt.Fprintln(c.w, string(out))
		return false, nil
	}
	return true, json.Unmarshal(raw, into)
}

func stamp(t *time.Time) string {
	if t == nil || t.IsZero() {
		return "-"
	}
	return t.UTC().Format(time.RFC3339)
}

func listGroups(ctx context.Context, c *call) error {
	var list struct {
		Groups []apiv1.GroupView `json:"groups"`
	}
	if text, err := read(ctx, c, "/v1/groups", &list); !text {
		return err
	}
	fmt.Fprintf(c.w, "%-24s %-18s %-13s %-9s %10s %8s  %s\n", "GROUP", "STATE", "REPLICATION", "HEALTH", "RPO", "PENDING", "LAST POINT")
	for _, g := range list.Groups {
		fmt.Fprintf(c.w, "%-24s %-18s %-13s %-9s %9.1fs %8d  %s\n", g.Group, g.State, orDash(g.ReplicationState), orDash(g.Health), g.RPOSeconds, g.PendingBatches, stamp(g.LastPointTime))
	}
	return nil
}

func groupStatus(ctx context.Context, c *call) error {
	var g apiv1.GroupView
	if text, err := read(ctx, c, "/v1/groups/"+c.args[0], &g); !text {
		return err
	}
	fmt.Fprintf(c.w, "group        %s\nstate        %s\nreplication  %s\nhealth       %s\n", g.Group, strings.TrimSpace(string(g.State)+" "+g.Reason), g.ReplicationState, orDash(g.Health))
	for _, e := range g.HealthErrors {
		fmt.Fprintf(c.w, "  %s %s: %s\n    what to do: %s\n", e.Severity, e.Code, e.Message, e.RecommendedAction)
	}
	fmt.Fprintf(c.w, "RPO          %.1f s\nagent seen   %s\nnewest point %s\npending      %d batches\n", g.RPOSeconds, stamp(g.AgentSeenAt), stamp(g.LastPointTime), g.PendingBatches)
	fmt.Fprintf(c.w, "allowed      %s\n", strings.Join(g.AllowedOperations, ", "))
	for _, n := range g.NotAllowed {
		fmt.Fprintf(c.w, "  not %s: %s\n", n.Operation, n.Reason)
	}
	return nil
}

func listPoints(ctx context.Context, c *call) error {
	var list apiv1.PointsPage
	if text, err := read(ctx, c, "/v1/groups/"+c.args[0]+"/recovery-points", &list); !text {
		return err
	}
	fmt.Fprintf(c.w, "%-12s %-6s %-20s %10s  %s\n", "POINT", "KIND", "SOURCE TIME", "SEQ", "SUSPECT")
	for _, p := range list.Points {
		fmt.Fprintf(c.w, "%-12s %-6s %-20s %10d  %s\n", p.ID, p.Kind, stamp(&p.SourceTime), p.Seq, orDash(p.Suspect))
	}
	fmt.Fprintf(c.w, "restorable from %s to %s (any point in time between: %v)\n", stamp(list.Window.From), stamp(list.Window.To), list.Window.JournalCovers)
	return nil
}

func listEvents(ctx context.Context, c *call) error {
	var list apiv1.EventsPage
	if text, err := read(ctx, c, "/v1/groups/"+c.args[0]+"/events", &list); !text {
		return err
	}
	for _, e := range list.Events {
		fmt.Fprintf(c.w, "%s  %-16s %s\n", stamp(&e.Time), e.Kind, e.Message)
	}
	return nil
}

func listJobs(ctx context.Context, c *call) error {
	q := url.Values{"limit": {strconv.Itoa(c.o.limit)}}
	for k, v := range map[string]string{"group": c.o.group, "state": c.o.state, "type": c.o.jobType} {
		if v != "" {
			q.Set(k, v)
		}
	}
	var list apiv1.JobList
	if text, err := read(ctx, c, "/v1/jobs?"+q.Encode(), &list); !text {
		return err
	}
	fmt.Fprintf(c.w, "%-32s %-22s %-24s %-10s %-20s %s\n", "JOB", "TYPE", "GROUP/PLAN", "STATE", "CREATED", "POINT")
	for _, j := range list.Jobs {
		fmt.Fprintf(c.w, "%-32s %-22s %-24s %-10s %-20s %s\n", j.ID, j.Type, orDash(j.Group+j.Plan), j.State, stamp(&j.CreatedAt), orDash(j.Point))
	}
	return nil
}

func showJob(ctx context.Context, c *call) error {
	if c.o.wait {
		return follow(ctx, c, c.args[0])
	}
	var j apiv1.JobView
	if text, err := read(ctx, c, "/v1/jobs/"+c.args[0], &j); !text {
		return err
	}
	fmt.Fprintf(c.w, "job %s (%s) of %s: %s\n", j.ID, j.Type, orDash(j.Group+j.Plan), j.State)
	if j.Point != "" {
		fmt.Fprintf(c.w, "point  %s\n", j.Point)
	}
	for _, s := range j.Steps {
		fmt.Fprintf(c.w, "  %-22s %-8s %-20s %s\n", s.Name, s.State, stamp(&s.Ended), s.Outcome)
	}
	if j.Error != "" {
		fmt.Fprintf(c.w, "error  %s\n", j.Error)
	}
	return nil
}

// jobRoutes are the API routes of the CLI's job commands.
var jobRoutes = map[string]string{"failover": "failover", "commit": "commit", "cleanup-test": "cleanup-test-failover",
	"change-point": "change-recovery-point", "reprotect": "reprotect", "failback": "failback"}

// startJob asks for a job on the group, and follows it when told to.
func startJob(ctx context.Context, c *call, cmd, group string) error {
	var body any
	switch cmd {
	case "failover":
		body = apiv1.FailoverRequest{Type: c.o.jobType, RecoveryPoint: c.o.point}
	case "change-point":
		body = apiv1.ChangePointRequest{RecoveryPoint: c.o.point}
	case "reprotect":
		if len(c.o.sources) > 0 {
			body = apiv1.ReprotectRequest{Sources: c.o.sources}
		}
	}
	return queue(ctx, c, "/v1/groups/"+group+"/"+jobRoutes[cmd], body)
}

// queue posts a job request, says what was queued, and follows it with --wait.
func queue(ctx context.Context, c *call, path string, body any) error {
	var job apiv1.JobView
	if _, err := c.cl.Do(ctx, http.MethodPost, path, body, &job); err != nil {
		return err
	}
	fmt.Fprintf(c.w, "job %s (%s) queued\n", job.ID, job.Type)
	if c.o.wait {
		return follow(ctx, c, job.ID)
	}
	return nil
}

// stillEvery is how long a followed job may show nothing new before the CLI says it still waits.
var stillEvery = 15 * time.Second

// follow prints each step as it progresses until the job ends, and every stillEvery of no change what
// it still waits for; a failed job is an error.
func follow(ctx context.Context, c *call, id string) error {
	start, said := time.Now(), time.Now()
	seen := map[string]string{}
	for {
		job, err := c.cl.Job(ctx, id)
		if err != nil {
			return err
		}
		for _, s := range job.Steps {
			key := s.State + s.Outcome
			if seen[s.Name] != key && s.State != "pending" {
				seen[s.Name], said = key, time.Now()
				fmt.Fprintf(c.w, "%7.1fs  %-22s %-8s %s\n", time.Since(start).Seconds(), s.Name, s.State, s.Outcome)
			}
			if s.State == "running" && time.Since(said) >= stillEvery {
				said = time.Now()
				fmt.Fprintf(c.w, "%7.1fs  %-22s still running: %s\n", time.Since(start).Seconds(), s.Name, orDash(s.Outcome))
			}
		}
		switch job.State {
		case "Succeeded":
			fmt.Fprintf(c.w, "job %s succeeded in %.1fs", id, time.Since(start).Seconds())
			if r := job.Result["container"]; r != "" {
				fmt.Fprintf(c.w, ": disks in %s from %s", r, job.Point)
			}
			if n := job.Result["blocksSent"]; n != "" {
				fmt.Fprintf(c.w, ": %s of %s blocks differed and were sent", n, job.Result["blocksCompared"])
			}
			fmt.Fprintln(c.w)
			return nil
		case "Failed":
			return fmt.Errorf("job %s failed: %s", id, strings.TrimSpace(job.Error))
		}
		time.Sleep(300 * time.Millisecond)
	}
}
