package apiserver

import (
	"encoding/base64"
	"errors"
	"testing"

	"github.com/standby-dr/standby/shared/api/apiv1"
	"github.com/standby-dr/standby/shared/replication"
)

// principal is App Service authentication's header for a principal with these role claims.
func principal(typ string, roles ...string) string {
	doc := `{"auth_typ":"aad","name_typ":"name","role_typ":"roles","claims":[{"typ":"oid","val":"x"}`
	for _, r := range roles {
		doc += `,{"typ":"` + typ + `","val":"` + r + `"}`
	}
	return base64.StdEncoding.EncodeToString([]byte(doc + "]}"))
}

func TestPrincipalRole(t *testing.T) {
	route := func(method, path string) apiv1.Route {
		for _, r := range apiv1.Routes {
			if r.Method == method && r.Path == path {
				return r
			}
		}
		t.Fatalf("no route %s %s", method, path)
		return apiv1.Route{}
	}
	failover, read, put := route("POST", "/groups/{group}/failover"), route("GET", "/groups"), route("PUT", "/groups/{group}")
	uri := "http://schemas.microsoft.com/ws/2008/06/identity/claims/role"
	cases := []struct {
		name    string
		route   apiv1.Route
		header  string
		trusted bool
		want    apiv1.Role
		err     error
	}{
		{"operator", failover, principal("roles", "Standby.Operator"), true, apiv1.RoleOperator, nil},
		{"operator, mapped claim type", failover, principal(uri, "Standby.Operator"), true, apiv1.RoleOperator, nil},
		{"reader reads", read, principal("roles", "Standby.Reader"), true, apiv1.RoleReader, nil},
		{"reader cannot fail over", failover, principal("roles", "Standby.Reader"), true, "", replication.ErrForbidden},
		{"peer enables", put, principal("roles", "Standby.Reader", "Standby.Peer"), true, apiv1.RolePeer, nil},
		{"reader and peer read as reader", read, principal("roles", "Standby.Peer", "Standby.Reader"), true, apiv1.RoleReader, nil},
		{"a role by another claim type", failover, principal("groups", "Standby.Operator"), true, "", replication.ErrForbidden},
		{"no Standby role", read, principal("roles", "Other.Admin"), true, "", replication.ErrForbidden},
		{"no header", read, "", true, "", replication.ErrUnauthorized},
		{"not base64", read, "%%%", true, "", replication.ErrUnauthorized},
		{"not a document", read, base64.StdEncoding.EncodeToString([]byte("[1]")), true, "", replication.ErrUnauthorized},
		{"authentication off", failover, principal("roles", "Standby.Operator"), false, "", replication.ErrForbidden},
	}
	for _, c := range cases {
		got, err := PrincipalRole(c.route, c.header, c.trusted)
		if got != c.want || !errors.Is(err, c.err) || (c.err == nil) != (err == nil) {
			t.Errorf("%s: %q, %v; want %q, %v", c.name, got, err, c.want, c.err)
		}
	}
}

func FuzzPrincipalRoles(f *testing.F) {
	f.Add(principal("roles", "Standby.Operator"))
	f.Add("")
	f.Add("e30=")
	f.Fuzz(func(t *testing.T, header string) {
		held, err := principalRoles(header)
		if err == nil && len(held) > len(apiv1.AppRoles) {
			t.Fatalf("%d roles from one principal", len(held))
		}
	})
}
