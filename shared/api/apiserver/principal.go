package apiserver

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"strings"

	"github.com/standby-dr/standby/shared/api/apiv1"
	"github.com/standby-dr/standby/shared/replication"
)

// The identity door's principal (apiv1.PrincipalHeader), decoded on the server.

// roleClaimTypes are the claim types app roles arrive as: "roles" in Entra's tokens, or the role URI
// after App Service's claims mapping (both seen: azure-functions-host issue 3898).
var roleClaimTypes = map[string]bool{"roles": true, "http://schemas.microsoft.com/ws/2008/06/identity/claims/role": true}

// MaxPrincipalBytes bounds the header (a token's claims fit in far less).
const MaxPrincipalBytes = 16 << 10

// PrincipalRole is the role a principal calls route as: of the roles its app roles give, the first of
// operator, reader, peer that the route allows. trusted says App Service authentication is on.
func PrincipalRole(route apiv1.Route, header string, trusted bool) (apiv1.Role, error) {
	if !trusted {
		return "", fmt.Errorf("%w: App Service authentication is not on for this app (StandbyEntraAuth): use a function key", replication.ErrForbidden)
	}
	if header == "" {
		return "", fmt.Errorf("%w: sign in with Microsoft Entra ID (a bearer token for the app's audience)", replication.ErrUnauthorized)
	}
	held, err := principalRoles(header)
	if err != nil {
		return "", fmt.Errorf("%w: %v", replication.ErrUnauthorized, err)
	}
	for _, role := range []apiv1.Role{apiv1.RoleOperator, apiv1.RoleReader, apiv1.RolePeer} {
		if held[role] && route.Allows(role) {
			return role, nil
		}
	}
	return "", fmt.Errorf("%w: the caller's app roles (%d of Standby's) do not allow %s %s", replication.ErrForbidden, len(held), route.Method, route.Path)
}

// principalRoles decodes the principal header into the Standby roles its app-role claims give.
func principalRoles(header string) (map[apiv1.Role]bool, error) {
	if len(header) > MaxPrincipalBytes {
		return nil, fmt.Errorf("the principal header has %d bytes, at most %d", len(header), MaxPrincipalBytes)
	}
	raw, err := base64.StdEncoding.DecodeString(strings.TrimSpace(header))
	if err != nil {
		return nil, fmt.Errorf("the principal header is not base64")
	}
	var p struct {
		Claims []struct {
			Typ string `json:"typ"`
			Val string `json:"val"`
		} `json:"claims"`
	}
	if err := json.Unmarshal(raw, &p); err != nil {
		return nil, fmt.Errorf("the principal header is not a principal document")
	}
	held := map[apiv1.Role]bool{}
	for _, c := range p.Claims {
		if role, ok := apiv1.AppRoles[c.Val]; ok && roleClaimTypes[c.Typ] {
			held[role] = true
		}
	}
	return held, nil
}
