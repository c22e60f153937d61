package azcompute

import (
	"context"
	"errors"
	"net/http"
	"slices"
	"testing"

	"github.com/standby-dr/standby/shared/replication"
	"github.com/standby-dr/standby/shared/testkit/fakearm"
)

// The permissions API's answer (Permissions - List For Resource Group, api-version 2022-04-01,
// authorization stable/2022-04-01/examples/GetPermissions.json: {"value":[{"actions":[…],
// "notActions":[…],"dataActions":[…],"notDataActions":[…]}]}) decides which actions are missing: an
// action needs a matching actions entry of one definition and no matching notActions entry of it.
func TestMissingActions(t *testing.T) {
	f, c, _ := newFake(t)
	answers := map[string]any{
		"contributor": []any{map[string]any{"actions": []any{"*"}, "notActions": []any{"Microsoft.Authorization/*/Delete",
			"Microsoft.Authorization/*/Write", "Microsoft.Authorization/elevateAccess/Action"}, "dataActions": []any{}, "notDataActions": []any{}}},
		"vm-only": []any{map[string]any{"actions": []any{"Microsoft.Compute/virtualMachines/*", "microsoft.resources/deployments/WRITE"}, "notActions": []any{}}},
		"no-disk-delete": []any{
			map[string]any{"actions": []any{"*"}, "notActions": []any{"Microsoft.Compute/disks/delete"}},
			map[string]any{"actions": []any{"*/read"}, "notActions": []any{}}},
		"reader": []any{map[string]any{"actions": []any{"*/read"}, "notActions": []any{}}},
	}
	for rg, value := range answers {
		f.On("GET", rgPathOf(rg)+"/providers/Microsoft.Authorization/permissions", func(w http.ResponseWriter, r *http.Request) {
			if r.URL.Query().Get("api-version") != "2022-04-01" {
				t.Errorf("api-version %q", r.URL.Query().Get("api-version"))
			}
			fakearm.Reply(w, 200, map[string]any{"value": value})
		})
	}
	f.On("GET", rgPathOf("gone")+"/providers/Microsoft.Authorization/permissions", func(w http.ResponseWriter, r *http.Request) {
		fakearm.Reply(w, 404, fakearm.Err("ResourceGroupNotFound", "Resource group 'gone' could not be found."))
	})
	actions := []string{"Microsoft.Resources/deployments/write", "Microsoft.Compute/virtualMachines/write", "Microsoft.Compute/disks/delete", "Microsoft.Authorization/roleAssignments/write"}
	ctx := context.Background()
	for rg, want := range map[string][]string{
		"contributor":    {"Microsoft.Authorization/roleAssignments/write"},
		"vm-only":        {"Microsoft.Compute/disks/delete", "Microsoft.Authorization/roleAssignments/write"},
		"no-disk-delete": {"Microsoft.Compute/disks/delete"}, // the reader-like second definition does not give it back
		"reader":         actions,
	} {
		got, err := c.MissingActions(ctx, rg, actions)
		if err != nil || !slices.Equal(got, want) {
			t.Errorf("%s: missing %v, %v; want %v", rg, got, err, want)
		}
	}
	if _, err := c.MissingActions(ctx, "gone", actions); !errors.Is(err, replication.ErrNotFound) {
		t.Errorf("a missing group: %v", err)
	}
}

func TestActionMatches(t *testing.T) {
	for _, c := range []struct {
		pattern, action string
		want            bool
	}{
		{"*", "Microsoft.Compute/disks/write", true},
		{"Microsoft.Compute/*", "microsoft.compute/disks/write", true},
		{"Microsoft.Compute/*/write", "Microsoft.Compute/disks/write", true},
		{"Microsoft.Compute/*/write", "Microsoft.Compute/disks/delete", false},
		{"*/read", "Microsoft.Compute/disks/read", true},
		{"*/read", "Microsoft.Compute/disks/readx", false},
		{"Microsoft.Compute/disks/write", "Microsoft.Compute/disks/writes", false},
		{"Microsoft.Network/*", "Microsoft.Compute/disks/write", false},
	} {
		if got := actionMatches(c.pattern, c.action); got != c.want {
			t.Errorf("actionMatches(%q, %q) = %v", c.pattern, c.action, got)
		}
	}
}

func rgPathOf(rg string) string { return "/subscriptions/" + fakearm.Sub + "/resourceGroups/" + rg }
