package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"

	"github.com/standby-dr/standby/shared/api/apiclient"
	"github.com/standby-dr/standby/shared/api/apiv1"
)

// planCommand runs "standby plan list|show|put|delete|failover|cleanup-test|commit ...".
func planCommand(ctx context.Context, cl *apiclient.Client, pos []string, o jobOptions) error {
	if len(pos) == 0 {
		return fmt.Errorf("usage: standby plan list | show P | put P FILE | delete P | failover P --type T [--point X] | cleanup-test P | commit P | drill P | drills P | drill-report P ID")
	}
	if pos[0] == "list" {
		return show(ctx, cl, "/v1/plans")
	}
	if len(pos) < 2 {
		return fmt.Errorf("plan %s needs the plan's name", pos[0])
	}
	path := "/v1/plans/" + pos[1]
	var body any
	switch pos[0] {
	case "show":
		return show(ctx, cl, path)
	case "delete":
		_, err := cl.Do(ctx, http.MethodDelete, path, nil, nil)
		return err
	case "put":
		if len(pos) != 3 {
			return fmt.Errorf("plan put P FILE: the plan's JSON file")
		}
		data, err := os.ReadFile(pos[2])
		if err != nil {
			return err
		}
		var spec json.RawMessage = data
		if _, err := cl.Do(ctx, http.MethodPut, path, spec, nil); err != nil {
			return err
		}
		return show(ctx, cl, path)
	case "failover":
		path, body = path+"/failover", apiv1.FailoverRequest{Type: o.jobType, RecoveryPoint: o.point}
	case "cleanup-test":
		path += "/cleanup-test-failover"
	case "commit":
		path += "/commit"
	case "drill":
		return startDrill(ctx, cl, os.Stdout, path, o)
	case "drills":
		return listDrills(ctx, cl, os.Stdout, path)
	case "drill-report":
		if len(pos) != 3 {
			return fmt.Errorf("plan drill-report P ID: the plan and the drill's id")
		}
		return drillReport(ctx, cl, os.Stdout, path, pos[2])
	default:
		return fmt.Errorf("unknown plan command %q", pos[0])
	}
	var job apiv1.JobView
	if _, err := cl.Do(ctx, http.MethodPost, path, body, &job); err != nil {
		return err
	}
	fmt.Printf("job %s (%s) queued\n", job.ID, job.Type)
	if o.wait {
		return follow(ctx, cl, job.ID)
	}
	return nil
}
