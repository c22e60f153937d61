package apiv1

import (
	"encoding/json"
	"fmt"
	"maps"
	"net/http"
	"reflect"
	"regexp"
	"sort"
	"strings"
	"time"
)

// The OpenAPI 3.1 document of the REST API is built as data from Routes and the wire types themselves,
// so it cannot say one thing while the handler sends another: every route of Routes carries its summary,
// body and answers (OpenAPI panics otherwise), and each schema is the JSON encoding of its Go type —
// properties by json name, omitempty ones optional, nothing else allowed (additionalProperties: false).

// OpenAPI is the document, as JSON.
//go:generate go run ./internal/gendocs/run

// OpenAPI is the document as JSON.
func OpenAPI() []byte {
	doc := openAPIDocument()
	data, err := json.MarshalIndent(doc, "", "  ")
	if err != nil {
		panic(err)
	}
	return data
}

func openAPIDocument() map[string]any {
	s := &schemas{defs: map[string]any{}}
	problem := map[string]any{"description": "An RFC 7807 problem", "content": map[string]any{
		"application/problem+json": map[string]any{"schema": s.of(reflect.TypeFor[Problem]())}}}
	paths := map[string]any{}
	for _, rt := range Routes {
		if rt.Summary == "" || rt.Answers == nil {
			panic("apiv1: route " + rt.Key() + " has no summary or no answers")
		}
		item, _ := paths[rt.Path].(map[string]any)
		if item == nil {
			item = map[string]any{}
			paths[rt.Path] = item
		}
		item[strings.ToLower(rt.Method)] = s.operation(rt, problem)
	}
	var servers []any
	for _, role := range Roles {
		servers = append(servers, map[string]any{"url": Doors[role], "description": "the " + string(role) + "'s door"})
	}
	return map[string]any{
		"openapi": "3.1.0",
		"info": map[string]any{"title": "Standby", "version": "v1",
			"description": "Disaster recovery for Azure VMs. Each role calls through its own door (servers); an operation's x-standby-roles say which roles besides the operator may call it. Errors are RFC 7807 problem+json."},
		"servers": servers,
		"paths":   paths,
		"components": map[string]any{"schemas": s.defs, "securitySchemes": map[string]any{
			"functionKey": map[string]any{"type": "apiKey", "in": "header", "name": "x-functions-key",
				"description": "a key of the door's function (or a host key); ?code= works too"},
			"agentKey": map[string]any{"type": "apiKey", "in": "header", "name": AgentKeyHeader, "description": "the group's agent key, at the agent's door"}}},
		"security": []any{map[string]any{"functionKey": []any{}}, map[string]any{"agentKey": []any{}}},
	}
}

var pathParam = regexp.MustCompile(`\{(\w+)\}`)

func (s *schemas) operation(rt Route, problem map[string]any) map[string]any {
	out := map[string]any{"summary": rt.Summary, "operationId": operationID(rt), "x-standby-roles": append([]Role{RoleOperator}, rt.Roles...)}
	var params []any
	for _, m := range pathParam.FindAllStringSubmatch(rt.Path, -1) {
		params = append(params, map[string]any{"name": m[1], "in": "path", "required": true, "schema": map[string]any{"type": "string"}})
	}
	for _, q := range rt.Query {
		params = append(params, map[string]any{"name": q, "in": "query", "required": false, "schema": querySchema(rt, q)})
	}
	if params != nil {
		out["parameters"] = params
	}
	if rt.Body != nil {
		out["requestBody"] = map[string]any{"required": rt.Key() != "POST /groups/{group}/"+JobReprotect,
			"content": map[string]any{"application/json": map[string]any{"schema": s.input().of(reflect.TypeOf(rt.Body))}}}
	}
	responses := map[string]any{"default": problem}
	for status, answer := range rt.Answers {
		r := map[string]any{"description": http.StatusText(status)}
		if _, job := answer.(JobView); job && status == http.StatusAccepted {
			r["headers"] = map[string]any{"Location": map[string]any{"description": "the job's address, to follow it (GET)", "schema": map[string]any{"type": "string"}}}
		}
		if answer != nil {
			r["content"] = map[string]any{"application/json": map[string]any{"schema": s.of(reflect.TypeOf(answer))}}
		}
		responses[fmt.Sprint(status)] = r
	}
	out["responses"] = responses
	return out
}

// operationIDs name each route as a client's method would be named.
var operationIDs = map[string]string{
	"GET /health": "getHealth", "GET /openapi.json": "getOpenAPIDocument", "GET /groups": "listGroups",
	"PUT /groups/{group}": "putGroup", "GET /groups/{group}": "getGroup", "DELETE /groups/{group}": "disableGroup",
	"POST /groups/{group}/agent": "reportAgent", "POST /groups/{group}/agent-key": "issueAgentKey", "POST /groups/{group}/resync": "requestResync",
	"POST /groups/{group}/seed": "seedGroup", "GET /groups/{group}/stream-key": "getStreamKey", "GET /groups/{group}/disks/{vm}/{disk}/hashes": "getDiskHashes",
	"GET /groups/{group}/recovery-points": "listRecoveryPoints", "GET /groups/{group}/rpo-history": "getRPOHistory",
	"POST /groups/{group}/events": "reportEvent", "GET /groups/{group}/events": "listEvents",
	"POST /groups/{group}/failover": "startFailover", "POST /groups/{group}/change-recovery-point": "changeRecoveryPoint",
	"POST /groups/{group}/reprotect": "reprotectGroup", "POST /groups/{group}/cleanup-test-failover": "cleanupTestFailover",
	"POST /groups/{group}/commit": "commitFailover", "POST /groups/{group}/failback": "failBack",
	"POST /groups/{group}/drills": "startDrill", "GET /groups/{group}/drills": "listDrills", "GET /groups/{group}/drills/{id}": "getDrill",
	"GET /plans": "listPlans", "PUT /plans/{plan}": "putPlan", "GET /plans/{plan}": "getPlan", "DELETE /plans/{plan}": "deletePlan",
	"POST /plans/{plan}/failover": "startPlanFailover", "POST /plans/{plan}/drills": "startPlanDrill", "GET /plans/{plan}/drills": "listPlanDrills",
	"GET /plans/{plan}/drills/{id}": "getPlanDrill", "POST /plans/{plan}/cleanup-test-failover": "cleanupPlanTestFailover",
	"POST /plans/{plan}/commit": "commitPlanFailover", "GET /jobs": "listJobs", "GET /jobs/dead-letters": "listDeadLetters",
	"GET /jobs/{id}": "getJob", "POST /jobs/{id}/cancel": "cancelJob", "POST /jobs/{id}/acknowledge": "acknowledgeAction",
}

// operationID is a route's name (operationIDs); a route without one is a mistake in this table.
func operationID(rt Route) string {
	id, ok := operationIDs[rt.Key()]
	if !ok {
		panic("apiv1: route " + rt.Key() + " has no operation id")
	}
	return id
}

// queryTypes are the query parameters that are not strings: counts, block numbers, flags and times.
var queryTypes = map[string]map[string]any{
	"limit": {"type": "integer", "minimum": 1}, "count": {"type": "integer", "minimum": 1}, "keepData": {"type": "boolean"},
}

// querySchema is a query parameter's schema on a route: from and to are times, but a block number on
// the disk hashes.
func querySchema(rt Route, q string) map[string]any {
	if t, ok := queryTypes[q]; ok {
		return t
	}
	if q == "from" && strings.HasSuffix(rt.Path, "/hashes") {
		return map[string]any{"type": "integer", "minimum": 0}
	}
	if q == "from" || q == "to" {
		return map[string]any{"type": "string", "format": "date-time"}
	}
	return map[string]any{"type": "string"}
}

// schemas turns Go types into JSON Schema 2020-12 (OpenAPI 3.1's dialect) as their JSON encoding
// reads: named structs become components, referred to by $ref. A request body's types are described
// apart ("<Name>Input"): the API's decoder takes any field left out and the domain's validation names
// what is missing, so an input requires only the fields tagged input:"required" (those without which
// a body gets 400), and refuses any it does not know, as every schema does.
type schemas struct {
	defs   map[string]any
	inputs bool
}

func (s *schemas) input() *schemas { return &schemas{defs: s.defs, inputs: true} }

var timeType = reflect.TypeFor[time.Time]()

// Enums are the values a field tagged enum:"<name>" (or of type State) takes; apiserver's
// TestEnumsAreTheDomains keeps each equal to the domain's own list.
var Enums = map[string][]string{
	"groupState":       {"InitialReplication", "Protected", "ResyncRequired", "Resyncing", "Disabled", "FailedOver", "Committed", "Reprotected", "FailedBack"},
	"health":           {"Healthy", "Warning", "Critical"},
	"replicationState": {"stopped", "initialSync", "rescan", "disconnected", "stalled", "backlog", "continuous"},
	"healthError":      {"rpo-exceeded", "no-recent-point", "initial-replication", "agent-silent", "apply-stalled", "resync-required"},
	"operation":        {"test", "drill", "cleanup-test-failover", "planned", "unplanned", "change-recovery-point", "commit", "reprotect", "failback"},
	"jobType": {"change-recovery-point", "cleanup-test-failover", "commit", "drill", "failback", "planned", "reprotect", "reprotect-forward",
		"test", "unplanned", "plan-cleanup-test-failover", "plan-commit", "plan-drill", "plan-planned", "plan-test", "plan-unplanned"},
	"jobState":     {"Queued", "Running", "Succeeded", "Failed"},
	"stepState":    {"pending", "running", "done", "failed", "skipped"},
	"pointKind":    {"crash", "app"},
	"failoverType": {"test", "planned", "unplanned"},
}

// withEnum adds the enum a field's tag names to its schema (to an array's items).
func withEnum(p map[string]any, name string) map[string]any {
	values, ok := Enums[name]
	if !ok {
		panic("apiv1: no enum " + name)
	}
	if items, ok := p["items"].(map[string]any); ok {
		items["enum"] = values
		return p
	}
	p["enum"] = values
	return p
}

func (s *schemas) of(t reflect.Type) map[string]any {
	switch {
	case t == timeType:
		return map[string]any{"type": "string", "format": "date-time"}
	case t == reflect.TypeFor[State]():
		return withEnum(map[string]any{"type": "string"}, "groupState")
	case t.Kind() == reflect.Pointer:
		return s.of(t.Elem())
	}
	switch t.Kind() {
	case reflect.String:
		return map[string]any{"type": "string"}
	case reflect.Bool:
		return map[string]any{"type": "boolean"}
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64, reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return map[string]any{"type": "integer"}
	case reflect.Float32, reflect.Float64:
		return map[string]any{"type": "number"}
	case reflect.Slice, reflect.Array:
		return map[string]any{"type": []any{"array", "null"}, "items": s.of(t.Elem())} // a nil slice encodes as null
	case reflect.Map:
		return map[string]any{"type": []any{"object", "null"}, "additionalProperties": s.of(t.Elem())}
	case reflect.Interface:
		return map[string]any{}
	case reflect.Struct:
		name := t.Name()
		if name == "" {
			return s.object(t)
		}
		if s.inputs {
			name += "Input"
		}
		if _, done := s.defs[name]; !done {
			s.defs[name] = map[string]any{} // a placeholder, for types that refer to themselves
			s.defs[name] = s.object(t)
		}
		return map[string]any{"$ref": "#/components/schemas/" + name}
	}
	panic("apiv1: no JSON Schema for " + t.String())
}

// object is a struct's schema: its JSON fields (embedded structs' inlined), omitempty ones optional,
// pointers also null, nothing undocumented allowed.
func (s *schemas) object(t reflect.Type) map[string]any {
	return s.objectOf(t, t.Name())
}

// objectOf is object for a struct whose fields' docs are owner's (an anonymous struct's are its
// field's: "Owner.Field").
func (s *schemas) objectOf(t reflect.Type, owner string) map[string]any {
	props, required, needed := map[string]any{}, []string{}, []string{}
	var walk func(t reflect.Type, owner string)
	walk = func(t reflect.Type, owner string) {
		for i := range t.NumField() {
			f := t.Field(i)
			name, opts, _ := strings.Cut(f.Tag.Get("json"), ",")
			if f.Anonymous && name == "" {
				walk(f.Type, f.Type.Name())
				continue
			}
			if !f.IsExported() || name == "-" {
				continue
			}
			if name == "" {
				name = f.Name
			}
			p := s.of(f.Type)
			if e := f.Tag.Get("enum"); e != "" {
				p = withEnum(p, e)
			}
			if f.Type.Kind() == reflect.Pointer {
				p = map[string]any{"anyOf": []any{p, map[string]any{"type": "null"}}}
			}
			if doc := fieldDocs[owner+"."+f.Name]; doc != "" {
				if _, ref := p["$ref"]; ref { // a $ref's siblings are ignored in some tools: wrap it
					p = map[string]any{"allOf": []any{p}}
				}
				p = maps.Clone(p)
				p["description"] = doc
			}
			props[name] = p
			if !strings.Contains(opts, "omitempty") && !strings.Contains(opts, "omitzero") {
				required = append(required, name)
			}
			if f.Tag.Get("input") == "required" {
				needed = append(needed, name)
			}
		}
	}
	walk(t, owner)
	sort.Strings(required)
	if s.inputs { // what the API's validation refuses a body without (input:"required")
		required = needed
		sort.Strings(required)
	}
	return map[string]any{"type": "object", "properties": props, "required": required, "additionalProperties": false}
}
