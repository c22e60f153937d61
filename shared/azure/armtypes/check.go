package armtypes

import (
	"encoding/json"
	"fmt"
	"math"
	"sort"
	"strings"
)

// Expr is a value the reader could not evaluate: a Bicep expression (a reference, a function call, an
// interpolated string…). The check only sees that it is present. An ARM template string "[…]" is one too.
type Expr string

// envelope are the template keys of a resource that are not part of its body type.
var envelope = map[string]bool{
	"type": true, "apiVersion": true, "dependsOn": true, "parent": true, "scope": true,
	"copy": true, "condition": true, "comments": true,
}

// Check checks a resource body (the resource's JSON, or a body read from Bicep) against its type:
// properties the type does not have (at any depth), Required properties missing, ReadOnly properties
// set, and literal values of the wrong kind or outside a closed set of values. Each error names the
// resource type and the property path (errors sorted by it), e.g. "Microsoft.Web/sites@2024-11-01:
// properties.functionAppConfig.runtime.nmae: not a property (did you mean name?)".
func (c *Catalog) Check(resourceType, apiVersion string, body map[string]any) []error {
	prefix := resourceType + "@" + apiVersion
	o := c.Resource(resourceType, apiVersion)
	if o == nil {
		return []error{fmt.Errorf("%s: no type definition for this resource type and apiVersion", prefix)}
	}
	ck := &checker{prefix: prefix}
	top := make(map[string]any, len(body))
	for k, v := range body {
		if !envelope[k] {
			top[k] = v
		}
	}
	ck.object("", o, top)
	sort.Slice(ck.errs, func(i, j int) bool { return ck.errs[i].Error() < ck.errs[j].Error() })
	return ck.errs
}

type checker struct {
	prefix string
	errs   []error
}

func (ck *checker) fail(path, format string, args ...any) {
	if path == "" {
		path = "(body)"
	}
	ck.errs = append(ck.errs, fmt.Errorf("%s: %s: %s", ck.prefix, path, fmt.Sprintf(format, args...)))
}

func join(path, name string) string {
	if path == "" {
		return name
	}
	return path + "." + name
}

// isExpr: a value whose content is computed at deployment time.
func isExpr(v any) bool {
	switch v := v.(type) {
	case Expr:
		return true
	case string:
		return strings.HasPrefix(v, "[") && !strings.HasPrefix(v, "[[") && strings.HasSuffix(v, "]")
	}
	return false
}

func (ck *checker) value(path string, t *Type, v any) {
	if v == nil || isExpr(v) {
		return
	}
	switch t.Kind {
	case KindAny:
	case KindString:
		if _, ok := v.(string); !ok {
			ck.fail(path, "want a string, got %s", kindOf(v))
		}
	case KindInt:
		if !isInt(v) {
			ck.fail(path, "want an int, got %s", kindOf(v))
		}
	case KindBool:
		if _, ok := v.(bool); !ok {
			ck.fail(path, "want a bool, got %s", kindOf(v))
		}
	case KindLiteral:
		if s, ok := v.(string); !ok || !strings.EqualFold(s, t.Literal) {
			ck.fail(path, "want %s, got %s", t, show(v))
		}
	case KindUnion:
		ck.union(path, t, v)
	case KindArray:
		a, ok := v.([]any)
		if !ok {
			ck.fail(path, "want an array (%s), got %s", t, kindOf(v))
			return
		}
		for i, e := range a {
			ck.value(fmt.Sprintf("%s[%d]", path, i), t.Elem, e)
		}
	case KindObject:
		m, ok := v.(map[string]any)
		if !ok {
			ck.fail(path, "want an object (%s), got %s", t, kindOf(v))
			return
		}
		ck.object(path, t.Object, m)
	}
}

// union accepts the value when one member does; otherwise it reports the closest member's errors (or,
// for a closed set of literals, the set).
func (ck *checker) union(path string, t *Type, v any) {
	var best []error
	literals := true
	for _, m := range t.Members {
		if m.Kind != KindLiteral {
			literals = false
		}
		sub := &checker{prefix: ck.prefix}
		sub.value(path, m, v)
		if len(sub.errs) == 0 {
			return
		}
		if best == nil || len(sub.errs) < len(best) {
			best = sub.errs
		}
	}
	if literals {
		ck.fail(path, "want one of %s, got %s", t, show(v))
		return
	}
	ck.errs = append(ck.errs, best...)
}

func (ck *checker) object(path string, o *Object, m map[string]any) {
	props := o.Props
	requiredFrom := o.Props
	if o.Discriminator != "" && len(o.Variants) > 0 {
		if v := variant(o, m[o.Discriminator]); v != nil {
			props = append(append([]*Property{}, o.Props...), v.Props...)
			requiredFrom = props
		} else {
			if d, ok := m[o.Discriminator].(string); ok && !isExpr(d) {
				ck.fail(join(path, o.Discriminator), "%s selects no variant of %s", show(d), o.Name)
			}
			// The discriminator is an expression (or missing): accept any variant's properties.
			for _, v := range o.Variants {
				props = append(props, v.Props...)
			}
			props = append([]*Property{}, props...)
		}
	}
	byName := map[string]*Property{}
	for _, p := range props {
		if _, ok := byName[p.Name]; !ok || p.Type.Kind == KindLiteral {
			byName[p.Name] = p
		}
	}
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		p := byName[k]
		if p == nil {
			if o.Additional != nil {
				ck.value(join(path, k), o.Additional, m[k])
				continue
			}
			names := make([]string, 0, len(byName))
			for n := range byName {
				names = append(names, n)
			}
			if s := suggest(k, names); s != "" {
				ck.fail(join(path, k), "not a property (did you mean %s?)", s)
			} else {
				ck.fail(join(path, k), "not a property of %s", o.Name)
			}
			continue
		}
		if p.ReadOnly {
			ck.fail(join(path, k), "read-only property")
			continue
		}
		if p.Type.Kind == KindLiteral && o.Discriminator == k {
			continue // the discriminator chose the variant
		}
		ck.value(join(path, k), p.Type, m[k])
	}
	for _, p := range requiredFrom {
		if _, ok := m[p.Name]; !ok && p.Required && !p.ReadOnly {
			ck.fail(join(path, p.Name), "required property missing")
		}
	}
}

// variant is the variant a discriminator value selects.
func variant(o *Object, v any) *Object {
	s, ok := v.(string)
	if !ok {
		return nil
	}
	for _, vr := range o.Variants {
		for _, p := range vr.Props {
			if p.Name == o.Discriminator && p.Type.Kind == KindLiteral && strings.EqualFold(p.Type.Literal, s) {
				return vr
			}
		}
	}
	return nil
}

// suggest is the known name closest to a misspelt one (case-insensitive equal, or within an edit
// distance of a third of its length), or "".
func suggest(name string, names []string) string {
	best, bestD := "", math.MaxInt
	for _, n := range names {
		d := distance(strings.ToLower(name), strings.ToLower(n))
		if d < bestD || d == bestD && n < best {
			best, bestD = n, d
		}
	}
	if best == "" || bestD > 1+len(name)/3 {
		return ""
	}
	return best
}

func distance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}

func isInt(v any) bool {
	switch v := v.(type) {
	case int, int32, int64:
		return true
	case float64:
		return v == math.Trunc(v)
	case json.Number:
		_, err := v.Int64()
		return err == nil
	}
	return false
}

func kindOf(v any) string {
	switch v.(type) {
	case string:
		return "a string"
	case bool:
		return "a bool"
	case int, int32, int64, float64, json.Number:
		return "a number"
	case []any:
		return "an array"
	case map[string]any:
		return "an object"
	}
	return fmt.Sprintf("%T", v)
}

func show(v any) string {
	if s, ok := v.(string); ok {
		return "'" + s + "'"
	}
	return kindOf(v)
}
