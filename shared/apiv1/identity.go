package apiv1

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"strings"

	"github.com/standby-dr/standby/shared/replication"
)

// Callers signed in with Microsoft Entra ID come in through the identity door. App Service
// authentication (authsettingsV2, infra/main.bicep) validates their token and passes the principal to
// the app as the X-MS-CLIENT-PRINCIPAL header; external requests cannot set that header while it is on
// ("External requests aren't allowed to set these headers, so they're present only if set by App
// Service", learn.microsoft.com/azure/app-service/configure-authentication-user-identities). The
// Functions host checks no key for an EasyAuth principal (authLevel function still demands one:
// AuthenticationLevelHandler.cs:49-56 and AuthUtility.cs:30-71 of Azure/azure-functions-host@89dc438d),
// so the door's function is anonymous and the handler trusts the header only when the deployment says
// App Service authentication is on (StandbyEntraAuth=true, set by the template that turns it on).

// IdentityDoor is the identity door's path prefix.
const IdentityDoor = "/api/id/v1"

// PrincipalHeader carries App Service authentication's principal: base64 of
// {"auth_typ","claims":[{"typ","val"}],"name_typ","role_typ"} (the same document).
const PrincipalHeader = "X-MS-CLIENT-PRINCIPAL"

// AppRoles are the app roles of Standby's Entra app registration and the role each gives. The agent
// has none: its credential is its group's agent key.
var AppRoles = map[string]Role{"Standby.Operator": RoleOperator, "Standby.Reader": RoleReader, "Standby.Peer": RolePeer}

// roleClaimTypes are the claim types app roles arrive as: "roles" in Entra's tokens, or the role URI
// after App Service's claims mapping (both seen: azure-functions-host issue 3898).
var roleClaimTypes = map[string]bool{"roles": true, "http://schemas.microsoft.com/ws/2008/06/identity/claims/role": true}

// MaxPrincipalBytes bounds the header (a token's claims fit in far less).
const MaxPrincipalBytes = 16 << 10

// PrincipalRole is the role a principal calls route as: of the roles its app roles give, the first of
// operator, reader, peer that the route allows. trusted says App Service authentication is on.
func PrincipalRole(route Route, header string, trusted bool) (Role, error) {
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
	for _, role := range []Role{RoleOperator, RoleReader, RolePeer} {
		if held[role] && route.Allows(role) {
			return role, nil
		}
	}
	return "", fmt.Errorf("%w: the caller's app roles (%d of Standby's) do not allow %s %s", replication.ErrForbidden, len(held), route.Method, route.Path)
}

// principalRoles decodes the principal header into the Standby roles its app-role claims give.
func principalRoles(header string) (map[Role]bool, error) {
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
	held := map[Role]bool{}
	for _, c := range p.Claims {
		if role, ok := AppRoles[c.Val]; ok && roleClaimTypes[c.Typ] {
			held[role] = true
		}
	}
	return held, nil
}
