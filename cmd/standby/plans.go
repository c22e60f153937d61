package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"

	"github.com/standby-dr/standby/shared/api/apiv1"
)

// planArgs are how many arguments each plan subcommand takes after its name.
var planArgs = map[string]int{"list": 0, "show": 1, "put": 2, "delete": 1, "failover": 1, "cleanup-test": 1, "commit": 1,
	"drill": 1, "drills": 1, "drill-report": 2}

// planCommand runs "standby plan list|show|put|delete|failover|cleanup-test|commit|drill|drills|drill-report ...".
func planCommand(ctx context.Context, c *call) error {
	sub, rest := c.args[0], c.args[1:]
	want, ok := planArgs[sub]
	if !ok {
		return usagef(commandsByName()["plan"], "unknown plan command %q", sub)
	}
	if len(rest) != want {
		return usagef(commandsByName()["plan"], "plan %s takes %d argument(s), got %d", sub, want, len(rest))
	}
	// Plans are documents: list and show print them as the API has them, whatever -o says.
	asJSON := func(path string) error {
		_, err := read(ctx, &call{cl: c.cl, w: c.w, o: &options{output: "json"}}, path, nil)
		return err
	}
	if sub == "list" {
		return asJSON("/v1/plans")
	}
	path := "/v1/plans/" + rest[0]
	switch sub {
	case "show":
		return asJSON(path)
	case "delete":
		_, err := c.cl.Do(ctx, http.MethodDelete, path, nil, nil)
		return err
	case "put":
		data, err := os.ReadFile(rest[1])
		if err != nil {
			return err
		}
		var spec json.RawMessage = data
		if _, err := c.cl.Do(ctx, http.MethodPut, path, spec, nil); err != nil {
			return err
		}
		fmt.Fprintf(c.w, "plan %s stored\n", rest[0])
		return nil
	case "failover":
		return queue(ctx, c, path+"/failover", apiv1.FailoverRequest{Type: c.o.jobType, RecoveryPoint: c.o.point})
	case "cleanup-test":
		return queue(ctx, c, path+"/cleanup-test-failover", nil)
	case "commit":
		return queue(ctx, c, path+"/commit", nil)
	case "drill":
		return startDrill(ctx, c, path)
	case "drills":
		return listDrills(ctx, c, path)
	}
	return drillReport(ctx, c, path, rest[1])
}
