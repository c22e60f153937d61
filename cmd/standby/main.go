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
//	standby reprotect GROUP [--source vm/disk=file:/dev/… ...] [--wait]
//	standby failback GROUP [--wait]
//	standby drill GROUP [--point P] [--wait]   a drill now: test failover, the drill's checks, cleanup
//	standby drills GROUP                      the group's drills
//	standby drill-report GROUP ID             a drill's report, as an auditor keeps it
//	standby job ID [--wait]
//	standby ack JOB ACTION                 acknowledge a plan job's manual action
//	standby cancel JOB                     cancel a drill: it skips to its cleanup
//	standby plan list | show P | put P FILE | delete P | failover P --type T [--point X] | cleanup-test P | commit P [--wait]
//	standby plan drill P [--point X] [--wait] | drills P | drill-report P ID
//
// STANDBY_API (default http://127.0.0.1:7071/api) and STANDBY_API_KEY say where and how.
package main

import (
	"context"
	"flag"
	"fmt"
	"net/http"
	"os"
	"strings"

	"github.com/standby-dr/standby/shared/api/apiclient"
	"github.com/standby-dr/standby/shared/api/apiv1"
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
		return fmt.Errorf("usage: standby groups|status|points|events|failover|change-point|commit|cleanup-test|reprotect|failback|drill|drills|drill-report|job|ack|cancel|plan ...")
	}
	cmd, rest := args[0], args[1:]
	fs := flag.NewFlagSet(cmd, flag.ContinueOnError)
	jobType := fs.String("type", "test", "failover type: test, planned or unplanned")
	point := fs.String("point", "", "recovery point: latestProcessed, latestAppConsistent, rp-N or an RFC 3339 time")
	wait := fs.Bool("wait", false, "follow the job step by step until it ends")
	sources := map[string]string{}
	fs.Func("source", "reprotect: vm/disk=file:<device> where the agent on the failed-over VM reads that disk (repeatable)", func(v string) error {
		key, src, ok := strings.Cut(v, "=")
		if !ok || key == "" || src == "" {
			return fmt.Errorf("want vm/disk=file:<device>, got %q", v)
		}
		sources[key] = src
		return nil
	})
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
	switch cmd {
	case "groups":
		return listGroups(ctx, cl)
	case "status", "points", "events":
		group, err := arg()
		if err != nil {
			return err
		}
		return show(ctx, cl, "/v1/groups/"+group+map[string]string{"status": "", "points": "/recovery-points", "events": "/events"}[cmd])
	case "failover", "commit", "cleanup-test", "change-point", "reprotect", "failback":
		group, err := arg()
		if err != nil {
			return err
		}
		if len(sources) > 0 && cmd != "reprotect" {
			return fmt.Errorf("--source is for reprotect")
		}
		return startJob(ctx, cl, cmd, group, jobOptions{jobType: *jobType, point: *point, sources: sources, wait: *wait})
	case "drill", "drills", "drill-report", "cancel":
		return drillCommand(ctx, cl, cmd, pos, jobOptions{point: *point, wait: *wait})
	case "plan":
		return planCommand(ctx, cl, pos, jobOptions{jobType: *jobType, point: *point, wait: *wait})
	case "ack":
		if len(pos) != 2 {
			return fmt.Errorf("ack takes the job id and the action's name")
		}
		_, err := cl.Do(ctx, http.MethodPost, "/v1/jobs/"+pos[0]+"/acknowledge", apiv1.AcknowledgeRequest{Action: pos[1]}, nil)
		return err
	case "job":
		id, err := arg()
		if err != nil {
			return err
		}
		if *wait {
			return follow(ctx, cl, id)
		}
		return show(ctx, cl, "/v1/jobs/"+id)
	}
	return fmt.Errorf("unknown command %q", cmd)
}
