// Command standby is the operator CLI: it talks to the API.
//
//	standby groups
//	standby status GROUP
//	standby points GROUP
//	standby events GROUP
//	standby failover GROUP --type test|planned|unplanned [--point latestProcessed|latestAppConsistent|rp-N|TIME] [--wait]
//	standby change-point GROUP --point P [--wait]
//	standby commit GROUP [--wait]
//	standby cleanup-test GROUP [--wait]
//	standby job ID [--wait]
//
// STANDBY_API (default http://127.0.0.1:7071/api) and STANDBY_API_KEY say where and how.
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/standby-dr/standby/shared/apiclient"
	"github.com/standby-dr/standby/shared/apiv1"
)

func main() {
	if err := run(os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "standby:", err)
		os.Exit(1)
	}
}

func env(name, def string) string {
	if v := os.Getenv(name); v != "" {
		return v
	}
	return def
}

func run(args []string) error {
	if len(args) == 0 {
		return fmt.Errorf("usage: standby groups|status|points|events|failover|change-point|commit|cleanup-test|reprotect|failback|job ...")
	}
	cmd, rest := args[0], args[1:]
	fs := flag.NewFlagSet(cmd, flag.ContinueOnError)
	jobType := fs.String("type", "test", "failover type: test, planned or unplanned")
	point := fs.String("point", "", "recovery point: latestProcessed, latestAppConsistent, rp-N or an RFC 3339 time")
	wait := fs.Bool("wait", false, "follow the job step by step until it ends")
	// Flags may follow the positional argument: parse what comes after it.
	var pos []string
	for len(rest) > 0 {
		if err := fs.Parse(rest); err != nil {
			return err
		}
		if fs.NArg() == 0 {
			break
		}
		pos, rest = append(pos, fs.Arg(0)), fs.Args()[1:]
	}
	arg := func() (string, error) {
		if len(pos) != 1 {
			return "", fmt.Errorf("%s takes one argument", cmd)
		}
		return pos[0], nil
	}
	ctx := context.Background()
	cl := apiclient.New(env("STANDBY_API", "http://127.0.0.1:7071/api"), os.Getenv("STANDBY_API_KEY"))
	show := func(path string) error {
		var v any
		if _, err := cl.Do(ctx, http.MethodGet, path, nil, &v); err != nil {
			return err
		}
		out, _ := json.MarshalIndent(v, "", "  ")
		fmt.Println(string(out))
		return nil
	}
	switch cmd {
	case "groups":
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
	case "status", "points", "events":
		group, err := arg()
		if err != nil {
			return err
		}
		path := map[string]string{"status": "", "points": "/recovery-points", "events": "/events"}[cmd]
		return show("/v1/groups/" + group + path)
	case "failover", "commit", "cleanup-test", "change-point", "reprotect", "failback":
		group, err := arg()
		if err != nil {
			return err
		}
		var body any
		path := "/v1/groups/" + group + "/" + map[string]string{"failover": "failover", "commit": "commit",
			"cleanup-test": "cleanup-test-failover", "change-point": "change-recovery-point",
			"reprotect": "reprotect", "failback": "failback"}[cmd]
		switch cmd {
		case "failover":
			body = apiv1.FailoverRequest{Type: *jobType, RecoveryPoint: *point}
		case "change-point":
			body = apiv1.ChangePointRequest{RecoveryPoint: *point}
		}
		var job apiv1.JobView
		if _, err := cl.Do(ctx, http.MethodPost, path, body, &job); err != nil {
			return err
		}
		fmt.Printf("job %s (%s) queued\n", job.ID, job.Type)
		if *wait {
			return follow(ctx, cl, job.ID)
		}
		return nil
	case "job":
		id, err := arg()
		if err != nil {
			return err
		}
		if *wait {
			return follow(ctx, cl, id)
		}
		return show("/v1/jobs/" + id)
	}
	return fmt.Errorf("unknown command %q", cmd)
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
