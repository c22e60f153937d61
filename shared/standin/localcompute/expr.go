package localcompute

import (
	"fmt"
	"regexp"
	"strings"

	"github.com/standby-dr/standby/shared/replication"
)

// The template language, as far as Standby's deployments use it: an expression is a whole string in
// brackets, and the functions are parameters('name'), resourceGroup().location and
// resourceId('Namespace/type[/child]', name[, childName]). Anything else is refused, naming it: the
// local compute evaluates no expression it does not understand.

var (
	exprParameter  = regexp.MustCompile(`^parameters\('([A-Za-z0-9_]+)'\)$`)
	exprResourceID = regexp.MustCompile(`^resourceId\('([A-Za-z]+\.[A-Za-z]+/[A-Za-z/]+)'((?:, ?parameters\('[A-Za-z0-9_]+'\))+)\)$`)
	exprArgument   = regexp.MustCompile(`parameters\('([A-Za-z0-9_]+)'\)`)
)

// Location is the region the local compute reports for every resource group.
const Location = "local"

// evaluator resolves a deployment's expressions against its parameter values.
type evaluator struct {
	rg     string
	values map[string]any
}

// value resolves every expression inside v (strings in brackets, at any depth).
func (e evaluator) value(v any) (any, error) {
	switch x := v.(type) {
	case string:
		if !strings.HasPrefix(x, "[") || !strings.HasSuffix(x, "]") || strings.HasPrefix(x, "[[") {
			return x, nil
		}
		return e.expression(strings.TrimSpace(x[1 : len(x)-1]))
	case map[string]any:
		out := make(map[string]any, len(x))
		for k, item := range x {
			r, err := e.value(item)
			if err != nil {
				return nil, fmt.Errorf("%s: %w", k, err)
			}
			out[k] = r
		}
		return out, nil
	case []any:
		out := make([]any, len(x))
		for i, item := range x {
			r, err := e.value(item)
			if err != nil {
				return nil, fmt.Errorf("[%d]: %w", i, err)
			}
			out[i] = r
		}
		return out, nil
	}
	return v, nil
}

func (e evaluator) expression(expr string) (any, error) {
	switch {
	case expr == "resourceGroup().location":
		return Location, nil
	case exprParameter.MatchString(expr):
		return e.parameter(exprParameter.FindStringSubmatch(expr)[1])
	case exprResourceID.MatchString(expr):
		m := exprResourceID.FindStringSubmatch(expr)
		var names []string
		for _, a := range exprArgument.FindAllStringSubmatch(m[2], -1) {
			v, err := e.parameter(a[1])
			if err != nil {
				return nil, err
			}
			s, ok := v.(string)
			if !ok {
				return nil, fmt.Errorf("%w: resourceId's argument parameters('%s') is not a string", replication.ErrInvalid, a[1])
			}
			names = append(names, s)
		}
		return ResourceID(e.rg, m[1], names...)
	}
	return nil, fmt.Errorf("%w: the expression [%s] uses a function the local compute does not evaluate (parameters, resourceGroup().location and resourceId only)", replication.ErrInvalid, expr)
}

func (e evaluator) parameter(name string) (any, error) {
	v, ok := e.values[name]
	if !ok {
		return nil, fmt.Errorf("%w: parameters('%s') has no value", replication.ErrInvalid, name)
	}
	return v, nil
}

// ResourceID is the id of a resource of the type in the resource group: the names fill the type's
// segments in order ("Microsoft.Network/virtualNetworks/subnets", vnet, subnet).
func ResourceID(rg, typ string, names ...string) (string, error) {
	ns, kinds, _ := strings.Cut(typ, "/")
	segments := strings.Split(kinds, "/")
	if len(segments) != len(names) {
		return "", fmt.Errorf("%w: resourceId('%s') takes %d names, got %d", replication.ErrInvalid, typ, len(segments), len(names))
	}
	id := "/subscriptions/local/resourceGroups/" + rg + "/providers/" + ns
	for i, kind := range segments {
		id += "/" + kind + "/" + names[i]
	}
	return id, nil
}
