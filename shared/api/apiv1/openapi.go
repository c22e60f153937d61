package apiv1

import (
	"encoding/json"
	"fmt"
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

var (
	pathParam = regexp.MustCompile(`\{(\w+)\}`)
	pathWord  = regexp.MustCompile(`[A-Za-z0-9]+`)
)

func (s *schemas) operation(rt Route, problem map[string]any) map[string]any {
	out := map[string]any{"summary": rt.Summary, "operationId": operationID(rt), "x-standby-roles": append([]Role{RoleOperator}, rt.Roles...)}
	var params []any
	for _, m := range pathParam.FindAllStringSubmatch(rt.Path, -1) {
		params = append(params, map[string]any{"name": m[1], "in": "path", "required": true, "schema": map[string]any{"type": "string"}})
	}
	for _, q := range rt.Query {
		params = append(params, map[string]any{"name": q, "in": "query", "required": false, "schema": map[string]any{"type": "string"}})
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
		if answer != nil {
			r["content"] = map[string]any{"application/json": map[string]any{"schema": s.of(reflect.TypeOf(answer))}}
		}
		responses[fmt.Sprint(status)] = r
	}
	out["responses"] = responses
	return out
}

// operationID is a route's name: its method and path's words ("getGroupsGroupRecoveryPoints").
func operationID(rt Route) string {
	id := strings.ToLower(rt.Method)
	for _, w := range pathWord.FindAllString(rt.Path, -1) {
		id += strings.ToUpper(w[:1]) + w[1:]
	}
	return id
}

// schemas turns Go types into JSON Schema 2020-12 (OpenAPI 3.1's dialect) as their JSON encoding
// reads: named structs become components, referred to by $ref. A request body's types are described
// apart ("<Name>Input"): the API's decoder takes any field left out (the domain's validation then names
// what is missing), so an input requires none, and refuses any it does not know, as every schema does.
type schemas struct {
	defs   map[string]any
	inputs bool
}

func (s *schemas) input() *schemas { return &schemas{defs: s.defs, inputs: true} }

var timeType = reflect.TypeFor[time.Time]()

func (s *schemas) of(t reflect.Type) map[string]any {
	switch {
	case t == timeType:
		return map[string]any{"type": "string", "format": "date-time"}
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
	props, required := map[string]any{}, []string{}
	var walk func(t reflect.Type)
	walk = func(t reflect.Type) {
		for i := range t.NumField() {
			f := t.Field(i)
			name, opts, _ := strings.Cut(f.Tag.Get("json"), ",")
			if f.Anonymous && name == "" {
				walk(f.Type)
				continue
			}
			if !f.IsExported() || name == "-" {
				continue
			}
			if name == "" {
				name = f.Name
			}
			p := s.of(f.Type)
			if f.Type.Kind() == reflect.Pointer {
				p = map[string]any{"anyOf": []any{p, map[string]any{"type": "null"}}}
			}
			props[name] = p
			if !strings.Contains(opts, "omitempty") && !strings.Contains(opts, "omitzero") {
				required = append(required, name)
			}
		}
	}
	walk(t)
	sort.Strings(required)
	if s.inputs {
		required = []string{}
	}
	return map[string]any{"type": "object", "properties": props, "required": required, "additionalProperties": false}
}
