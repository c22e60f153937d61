package fakearm

import (
	"net/http"
	"strings"
	"sync"
)

// Groups emulates, statefully, the resource groups of the test subscription (Microsoft.Resources):
// CheckExistence (HEAD, 204 or 404), CreateOrUpdate (PUT) and Get of …/resourcegroups/{name}, and the
// app's permissions in a group (Permissions - List For Resource Group): every action ("*") in a group
// that exists, ResourceGroupNotFound otherwise. Resources inside a group are other emulations' (Disks).
type Groups struct {
	mu     sync.Mutex
	groups map[string]bool // by lowercased name
}

// NewGroups starts the emulation.
func (f *Server) NewGroups() *Groups {
	g := &Groups{groups: map[string]bool{}}
	f.OnUnder("/subscriptions/"+Sub+"/resourcegroups", g.serve)
	return g
}

// Add makes a resource group exist.
func (g *Groups) Add(name string) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.groups[strings.ToLower(name)] = true
}

func (g *Groups) serve(w http.ResponseWriter, r *http.Request) {
	rest := r.URL.Path[len("/subscriptions/"+Sub+"/resourcegroups/"):]
	name, sub, _ := strings.Cut(rest, "/")
	g.mu.Lock()
	exists := g.groups[strings.ToLower(name)]
	g.mu.Unlock()
	id := "/subscriptions/" + Sub + "/resourceGroups/" + name
	switch {
	case strings.EqualFold(sub, "providers/Microsoft.Authorization/permissions") && r.Method == http.MethodGet:
		if !exists {
			Reply(w, 404, Err("ResourceGroupNotFound", "Resource group '"+name+"' could not be found."))
			return
		}
		Reply(w, 200, map[string]any{"value": []any{map[string]any{"actions": []any{"*"}, "notActions": []any{}}}})
	case sub != "":
		Reply(w, 404, Err("ResourceNotFound", "no such resource here: "+r.URL.Path))
	case r.Method == http.MethodHead:
		if exists {
			Reply(w, 204, nil)
		} else {
			Reply(w, 404, nil)
		}
	case r.Method == http.MethodPut:
		g.Add(name)
		Reply(w, 201, map[string]any{"id": id, "name": name, "location": "westeurope", "properties": map[string]any{"provisioningState": "Succeeded"}})
	case r.Method == http.MethodGet && exists:
		Reply(w, 200, map[string]any{"id": id, "name": name, "location": "westeurope", "properties": map[string]any{"provisioningState": "Succeeded"}})
	default:
		Reply(w, 404, Err("ResourceGroupNotFound", "Resource group '"+name+"' could not be found."))
	}
}
