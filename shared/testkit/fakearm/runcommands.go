package fakearm

import (
	"encoding/json"
	"net/http"
	"strings"
	"sync"
)

// RunCommands emulates, statefully, the managed run commands of one VM (Microsoft.Compute/
// virtualMachines/runCommands@2025-04-01): PUT runs the script at once through Run (as asyncExecution
// false does: the provisioning completes when the script has) and answers 201 Succeeded; GET answers
// the resource, with its instanceView only under $expand=instanceView; DELETE removes it. Bodies are
// kept as sent, for the test to check against the published types.
type RunCommands struct {
	mu       sync.Mutex
	path     string
	run      func(script string, timeoutSeconds int) RunOutcome
	commands map[string]map[string]any // by lowercased name
	Bodies   []map[string]any          // every PUT's body, in order
	Deleted  []string
}

// RunOutcome is how an emulated script ended: an executionState and, for Succeeded and Failed, its exit
// code; its output and error streams.
type RunOutcome struct {
	State         string
	ExitCode      int
	Output, Error string
}

// NewRunCommands starts the emulation for VM vm of resource group rg.
func (f *Server) NewRunCommands(rg, vm string, run func(script string, timeoutSeconds int) RunOutcome) *RunCommands {
	rc := &RunCommands{path: "/subscriptions/" + Sub + "/resourceGroups/" + rg + "/providers/Microsoft.Compute/virtualMachines/" + vm + "/runCommands",
		run: run, commands: map[string]map[string]any{}}
	f.OnUnder(rc.path, rc.serve)
	return rc
}

// Left lists the run commands not deleted.
func (rc *RunCommands) Left() int {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	return len(rc.commands)
}

func (rc *RunCommands) serve(w http.ResponseWriter, r *http.Request) {
	name := strings.ToLower(r.URL.Path[len(rc.path)+1:])
	rc.mu.Lock()
	defer rc.mu.Unlock()
	id := rc.path + "/" + name
	switch r.Method {
	case http.MethodPut:
		var body map[string]any
		if err := json.NewDecoder(r.Body).Decode(&body); err != nil {
			Reply(w, 400, Err("InvalidRequestContent", err.Error()))
			return
		}
		rc.Bodies = append(rc.Bodies, body)
		props, _ := body["properties"].(map[string]any)
		source, _ := props["source"].(map[string]any)
		script, _ := source["script"].(string)
		timeout, _ := props["timeoutInSeconds"].(float64)
		out := rc.run(script, int(timeout))
		view := map[string]any{"executionState": out.State, "output": out.Output, "error": out.Error,
			"startTime": "2026-12-07T10:00:00Z", "endTime": "2026-12-07T10:00:02Z"}
		if out.State == "Succeeded" || out.State == "Failed" {
			view["exitCode"] = out.ExitCode
		}
		rc.commands[name] = map[string]any{"id": id, "name": name, "type": "Microsoft.Compute/virtualMachines/runCommands",
			"location": body["location"], "properties": map[string]any{"provisioningState": "Succeeded", "source": source, "instanceView": view}}
		Reply(w, 201, rc.resource(name, false))
	case http.MethodGet:
		if rc.commands[name] == nil {
			Reply(w, 404, Err("ResourceNotFound", "The Resource 'Microsoft.Compute/virtualMachines/runCommands/"+name+"' was not found."))
			return
		}
		Reply(w, 200, rc.resource(name, r.URL.Query().Get("$expand") == "instanceView"))
	case http.MethodDelete:
		if rc.commands[name] != nil {
			delete(rc.commands, name)
			rc.Deleted = append(rc.Deleted, name)
		}
		Reply(w, 200, nil)
	default:
		Reply(w, 405, Err("MethodNotAllowed", r.Method))
	}
}

// resource is a run command as GET answers it: the instance view only when expanded.
func (rc *RunCommands) resource(name string, expand bool) map[string]any {
	res := map[string]any{}
	for k, v := range rc.commands[name] {
		res[k] = v
	}
	props := map[string]any{}
	for k, v := range rc.commands[name]["properties"].(map[string]any) {
		if k != "instanceView" || expand {
			props[k] = v
		}
	}
	res["properties"] = props
	return res
}
