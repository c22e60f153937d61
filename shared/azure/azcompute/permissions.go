package azcompute

import (
	"context"
	"strings"

	"github.com/standby-dr/standby/shared/azure/azarm"
)

// MissingActions asks ARM which of the actions the app's identity may not take in the resource group:
// GET …/resourceGroups/{rg}/providers/Microsoft.Authorization/permissions (Permissions - List For
// Resource Group, api-version 2022-04-01) lists, per role assignment that reaches the group, its actions
// and notActions, with * as a wildcard (learn.microsoft.com/azure/role-based-access-control/role-definitions:
// "an action is granted when an Actions entry matches it and no NotActions entry of the same
// definition does"). A group that does not exist answers ErrNotFound.
func (c *Compute) MissingActions(ctx context.Context, resourceGroup string, actions []string) ([]string, error) {
	var grants []grant
	pager := c.permissions.NewListForResourceGroupPager(resourceGroup, nil)
	for pager.More() {
		page, err := pager.NextPage(ctx)
		if err != nil {
			return nil, azarm.Translate(err, "reading the app's permissions on resource group "+resourceGroup)
		}
		for _, p := range page.Value {
			if p != nil {
				grants = append(grants, grant{allow: deref(p.Actions), deny: deref(p.NotActions)})
			}
		}
	}
	var missing []string
	for _, a := range actions {
		if !granted(grants, a) {
			missing = append(missing, a)
		}
	}
	return missing, nil
}

// grant is one role definition's actions and notActions, as the permissions API lists them.
type grant struct{ allow, deny []string }

func granted(grants []grant, action string) bool {
	for _, g := range grants {
		if matchesAny(g.allow, action) && !matchesAny(g.deny, action) {
			return true
		}
	}
	return false
}

func matchesAny(patterns []string, action string) bool {
	for _, p := range patterns {
		if actionMatches(p, action) {
			return true
		}
	}
	return false
}

// actionMatches is RBAC's match of an action pattern: case-insensitive, * standing for any run of
// characters.
func actionMatches(pattern, action string) bool {
	pattern, action = strings.ToLower(pattern), strings.ToLower(action)
	parts := strings.Split(pattern, "*")
	if len(parts) == 1 {
		return pattern == action
	}
	if !strings.HasPrefix(action, parts[0]) {
		return false
	}
	rest := action[len(parts[0]):]
	for i, part := range parts[1:] {
		last := i == len(parts)-2
		if last {
			return strings.HasSuffix(rest, part) && len(rest) >= len(part)
		}
		k := strings.Index(rest, part)
		if k < 0 {
			return false
		}
		rest = rest[k+len(part):]
	}
	return true
}

func deref(ss []*string) []string {
	out := make([]string, 0, len(ss))
	for _, s := range ss {
		if s != nil {
			out = append(out, *s)
		}
	}
	return out
}
