package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/standby-dr/standby/shared/api/apiclient"
	"github.com/standby-dr/standby/shared/api/apiv1"
)

// show prints a resource as the API answers it.
func show(ctx context.Context, cl *apiclient.Client, path string) error {
	var v any
	if _, err := cl.Do(ctx, http.MethodGet, path, nil, &v); err != nil {
		return err
	}
	out, _ := json.MarshalIndent(v, "", "  ")
	fmt.Println(string(out))
	return nil
}

// listGroups prints the groups as a table.
func listGroups(ctx context.Context, cl *apiclient.Client) error {
	var list struct {
		Groups []apiv1.GroupView `json:"groups"`
	}
	if _, err := cl.Do(ctx, http.MethodGet, "/v1/groups", nil, &list); err != nil {
		return err
	}
	fmt.Printf("%-24s %-18s %-9s %10s %8s  %s\n", "GROUP", "STATE", "HEALTH", "RPO", "PENDING", "LAST POINT")
	for _, g := range list.Groups {
		last := "-"
		if g.LastPointTime != nil {
			last = g.LastPointTime.Format(time.RFC3339)
		}
		fmt.Printf("%-24s %-18s %-9s %9.1fs %8d  %s\n", g.Group, g.State, g.Health, g.RPOSeconds, g.PendingBatches, last)
	}
	return nil
}

// jobRoutes are the API routes of the CLI's job commands.
var jobRoutes = map[string]string{"failover": "failover", "commit": "commit", "cleanup-test": "cleanup-test-failover",
	"change-point": "change-recovery-point", "reprotect": "reprotect", "failback": "failback"}

// jobOptions are the job commands' flags.
type jobOptions struct {
	jobType, point string
	sources        map[string]string
	wait           bool
}

// startJob asks for a job on the group, and follows it when told to.
func startJob(ctx context.Context, cl *apiclient.Client, cmd, group string, o jobOptions) error {
	var body any
	switch cmd {
	case "failover":
		body = apiv1.FailoverRequest{Type: o.jobType, RecoveryPoint: o.point}
	case "change-point":
		body = apiv1.ChangePointRequest{RecoveryPoint: o.point}
	case "reprotect":
		if len(o.sources) > 0 {
			body = apiv1.ReprotectRequest{Sources: o.sources}
		}
	}
	var job apiv1.JobView
	if _, err := cl.Do(ctx, http.MethodPost, "/v1/groups/"+group+"/"+jobRoutes[cmd], body, &job); err != nil {
		return err
	}
	fmt.Printf("job %s (%s) queued\n", job.ID, job.Type)
	if o.wait {
		return follow(ctx, cl, job.ID)
	}
	return nil
}

// follow prints each step as it progresses until the job ends; a failed job is an error.
func follow(ctx context.Context, cl *apiclient.Client, id string) error {
	start := time.Now()
	seen := map[string]string{}
	for {
		job, err := cl.Job(ctx, id)
		if err != nil {
			return err
		}
		for _, s := range job.Steps {
			key := s.State + s.Outcome
			if seen[s.Name] != key && s.State != "pending" {
				seen[s.Name] = key
				fmt.Printf("%7.1fs  %-22s %-8s %s\n", time.Since(start).Seconds(), s.Name, s.State, s.Outcome)
			}
		}
		switch job.State {
		case "Succeeded":
			fmt.Printf("job %s succeeded in %.1fs", id, time.Since(start).Seconds())
			if c := job.Result["container"]; c != "" {
				fmt.Printf(": disks in %s from %s", c, job.Point)
			}
			if n := job.Result["blocksSent"]; n != "" {
				fmt.Printf(": %s of %s blocks differed and were sent", n, job.Result["blocksCompared"])
			}
			fmt.Println()
			return nil
		case "Failed":
			return fmt.Errorf("job %s failed: %s", id, strings.TrimSpace(job.Error))
		}
		time.Sleep(300 * time.Millisecond)
	}
}
