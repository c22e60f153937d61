package apiv1

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
