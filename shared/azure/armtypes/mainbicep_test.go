package armtypes

import (
	"slices"

	"encoding/json"
	"github.com/standby-dr/standby/shared/azure/azsnapshots"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

func mainBicep(t *testing.T) string {
	t.Helper()
	data, err := os.ReadFile(filepath.Join("..", "..", "..", "infra", "main.bicep"))
	if err != nil {
		t.Fatal(err)
	}
	return string(data)
}

// moduleFiles are the Bicep files main.bicep deploys as modules (`module sym '<path>'`), by path
// relative to infra/, with their sources: each is type-checked like main.bicep.
func moduleFiles(t *testing.T, main string) map[string]string {
	t.Helper()
	files := map[string]string{}
	for _, l := range strings.Split(main, "\n") {
		f := strings.Fields(l)
		if len(f) < 3 || f[0] != "module" {
			continue
		}
		path := strings.Trim(f[2], "'")
		data, err := os.ReadFile(filepath.Join("..", "..", "..", "infra", path))
		if err != nil {
			t.Fatalf("main.bicep module %s: %v", f[1], err)
		}
		files[path] = string(data)
	}
	return files
}

// checkBicep reads src and checks every declared (not existing) resource.
func checkBicep(t *testing.T, c *Catalog, src string) ([]BicepResource, []string) {
	t.Helper()
	res, err := ParseBicep(src)
	if err != nil {
		t.Fatal(err)
	}
	var errs []string
	for _, r := range res {
		if r.Existing {
			continue
		}
		for _, e := range c.Check(r.Type, r.APIVersion, r.Body) {
			errs = append(errs, r.Symbol+": "+e.Error())
		}
	}
	return res, errs
}

func TestMainBicepTypes(t *testing.T) {
	c := load(t)
	src := mainBicep(t)
	res, errs := checkBicep(t, c, src)
	modules := moduleFiles(t, src)
	for path, msrc := range modules {
		mres, merrs := checkBicep(t, c, msrc)
		res = append(res, mres...)
		for _, e := range merrs {
			errs = append(errs, path+": "+e)
		}
	}
	for _, e := range errs {
		t.Error(e)
	}
	// Every declaration is read: main.bicep's 38 and its modules' 6 (the recovery group, its Contributor
	// assignment, the subnet-join role and its assignment, the agent's snapshot role and its assignment).
	// A declaration the reader skipped would go unchecked, so a change in the count must be a change in
	// the files.
	declared := 0
	for _, r := range res {
		if !r.Existing {
			declared++
		}
	}
	if len(modules) != 4 || declared != 44 {
		t.Errorf("%d modules, %d declared resources; want 4 and 44", len(modules), declared)
	}
	bySym := map[string]BicepResource{}
	for _, r := range res {
		bySym[r.Symbol] = r
		if strings.Contains(r.APIVersion, "preview") {
			t.Errorf("%s: preview apiVersion %s", r.Symbol, r.APIVersion)
		}
	}
	for _, sym := range []string{"cache", "journal", "target", "funcStorage", "deployments", "eventHubs", "changes", "applyGroup",
		"serviceBus", "jobs", "vault", "peerKey", "alertWebhookUrl", "plan", "app", "agent", "agentSenderRole", "agentJournalRole", "vaultSecretsUserRole",
		"targetReaderRole", "recovery", "recoveryContributorRole", "subnetJoinRoleDefinition", "subnetJoinRole", "auth",
		"logs", "insights", "insightsPublisherRole", "agentSnapshotsRole", "agentSnapshotsAssignment",
		"journalWriterRole", "groupAgents", "groupAgentSenderRoles", "groupAgentJournalRoles"} {
		if _, ok := bySym[sym]; !ok {
			t.Errorf("main.bicep declares no %s", sym)
		}
	}
	if t.Failed() {
		return
	}
	app := bySym["app"].Body
	if got := app["tags"].(map[string]any)["azd-service-name"]; got != "functions" {
		t.Errorf("app tag azd-service-name = %v, want functions (azure.yaml's service)", got)
	}
	fac := app["properties"].(map[string]any)["functionAppConfig"].(map[string]any)
	if rt := fac["runtime"].(map[string]any); rt["name"] != "custom" || rt["version"] != "1.0" {
		t.Errorf("runtime %v", rt)
	}
	settings := map[string]bool{}
	for _, s := range app["properties"].(map[string]any)["siteConfig"].(map[string]any)["appSettings"].([]any) {
		settings[s.(map[string]any)["name"].(string)] = true
	}
	for _, s := range []string{"AzureWebJobsStorage__accountName", "StandbyTargetStorage__blobServiceUri", "StandbyTargetStorage__tableServiceUri",
		"StandbyCacheStorage__blobServiceUri", "StandbyEventHubs__fullyQualifiedNamespace", "StandbyServiceBus__fullyQualifiedNamespace",
		"StandbyChangeHub", "StandbyJobQueue", "StandbyApplyConsumerGroup", "StandbyCutpointsSchedule", "StandbyAlertsSchedule", "StandbyAlertWebhook", "StandbyPeerApi", "StandbyPeerApiKey",
		"StandbyCompute", "StandbyTargetStorageAccountId", "StandbyEntraAuth", "StandbyRecoveryResourceGroup",
		"APPLICATIONINSIGHTS_CONNECTION_STRING", "APPLICATIONINSIGHTS_AUTHENTICATION_STRING"} {
		if !settings[s] {
			t.Errorf("app setting %s missing", s)
		}
	}
	for _, s := range []string{"FUNCTIONS_WORKER_RUNTIME", "FUNCTIONS_EXTENSION_VERSION", "WEBSITE_RUN_FROM_PACKAGE"} {
		if settings[s] {
			t.Errorf("app setting %s: Flex Consumption refuses it", s)
		}
	}
	if bySym["agentJournalRole"].Body["scope"] != Expr("journal") || bySym["agentSenderRole"].Body["scope"] != Expr("changes") {
		t.Errorf("the agent's roles must be scoped to the journal container and the change hub")
	}
	// A group's own agent identity: send on the change hub; read, create and list its group's batches in
	// the journal container (the condition), delete none.
	groupJournal := bySym["groupAgentJournalRoles"].Body
	raw, _ := groupJournal["properties"].(map[string]any)["condition"].(Expr) // interpolated: the reader keeps its source
	cond := strings.ReplaceAll(string(raw), `\'`, `'`)
	if groupJournal["scope"] != Expr("journal") || bySym["groupAgentSenderRoles"].Body["scope"] != Expr("changes") ||
		!strings.Contains(cond, "containers/blobs:path] StringStartsWith '${group}/'") || !strings.Contains(cond, "containers/blobs:prefix] StringStartsWith '${group}/'") ||
		strings.Count(cond, "(") != strings.Count(cond, ")") {
		t.Errorf("a group agent's journal role: scope %v, condition %q", groupJournal["scope"], cond)
	}
	writer, _ := json.Marshal(bySym["journalWriterRole"].Body["properties"].(map[string]any)["permissions"])
	if !strings.Contains(string(writer), `"dataActions":["Microsoft.Storage/storageAccounts/blobServices/containers/blobs/read","Microsoft.Storage/storageAccounts/blobServices/containers/blobs/write","Microsoft.Storage/storageAccounts/blobServices/containers/blobs/add/action"]`) ||
		strings.Contains(string(writer), "delete") {
		t.Errorf("the journal writer role %s", writer)
	}
	// The app's control-plane roles, and nothing more: Reader on the target account, Contributor on the
	// recovery group only (the module's own scope), join and read on the target network only.
	if bySym["targetReaderRole"].Body["scope"] != Expr("target") || bySym["recoveryContributorRole"].Body["scope"] != nil ||
		bySym["subnetJoinRole"].Body["scope"] != Expr("vnet") {
		t.Errorf("control-plane roles scoped wrongly: reader %v, contributor %v, subnet join %v", bySym["targetReaderRole"].Body["scope"],
			bySym["recoveryContributorRole"].Body["scope"], bySym["subnetJoinRole"].Body["scope"])
	}
	perms, _ := json.Marshal(bySym["subnetJoinRoleDefinition"].Body["properties"].(map[string]any)["permissions"])
	if string(perms) != `[{"actions":["Microsoft.Network/virtualNetworks/read","Microsoft.Network/virtualNetworks/subnets/read","Microsoft.Network/virtualNetworks/subnets/join/action"],"notActions":[]}]` {
		t.Errorf("subnet join role permissions %s", perms)
	}
	// Logs are kept: Application Insights over the workspace, without local authentication (the app's
	// identity publishes, as Monitoring Metrics Publisher on the component alone).
	ins := bySym["insights"].Body["properties"].(map[string]any)
	if ins["WorkspaceResourceId"] != Expr("logs.id") || ins["DisableLocalAuth"] != true || bySym["insightsPublisherRole"].Body["scope"] != Expr("insights") {
		t.Errorf("insights %v, publisher role scope %v", ins, bySym["insightsPublisherRole"].Body["scope"])
	}
	// The agent's snapshot role lists exactly the actions managed: tracking takes (azsnapshots).
	var agentPerms []struct{ Actions, NotActions []string }
	data, _ := json.Marshal(bySym["agentSnapshotsRole"].Body["properties"].(map[string]any)["permissions"])
	json.Unmarshal(data, &agentPerms)
	if len(agentPerms) != 1 || !slices.Equal(agentPerms[0].Actions, azsnapshots.RequiredActions) || len(agentPerms[0].NotActions) != 0 {
		t.Errorf("the agent's snapshot role %s, want exactly %v", data, azsnapshots.RequiredActions)
	}
	// Endpoints come from environment() and the resources, never from a written DNS suffix.
	for _, suffix := range []string{"windows.net", "azure.com", "azure.net", "chinacloudapi", "usgovcloudapi"} {
		for i, l := range strings.Split(src, "\n") {
			if code, _, _ := strings.Cut(l, "//"); strings.Contains(code, suffix) {
				t.Errorf("main.bicep:%d hard-codes %s", i+1, suffix)
			}
		}
	}
}

func TestMainBicepMistakesAreFound(t *testing.T) {
	c := load(t)
	src := mainBicep(t)
	for _, tc := range []struct{ old, new, want string }{
		{"allowBlobPublicAccess: false", "allowBlobPublicAcess: false",
			"cache: Microsoft.Storage/storageAccounts@2023-05-01: properties.allowBlobPublicAcess: not a property (did you mean allowBlobPublicAccess?)"},
		{"runtime: { name: 'custom'", "runtime: { nmae: 'custom'",
			"app: Microsoft.Web/sites@2024-11-01: properties.functionAppConfig.runtime.nmae: not a property (did you mean name?)"},
		{"instanceMemoryMB: instanceMemoryMB", "instanceMemoryMb: instanceMemoryMB",
			"app: Microsoft.Web/sites@2024-11-01: properties.functionAppConfig.scaleAndConcurrency.instanceMemoryMb: not a property (did you mean instanceMemoryMB?)"},
		{"    tenantId: subscription().tenantId\n", "",
			"vault: Microsoft.KeyVault/vaults@2025-05-01: properties.tenantId: required property missing"},
		{"principalId: agent.properties.principalId, principalType", "principalType",
			"agentSenderRole: Microsoft.Authorization/roleAssignments@2022-04-01: properties.principalId: required property missing"},
		{"{ name: 'AzureWebJobsStorage__accountName', value", "{ name: 'AzureWebJobsStorage__accountName', vaule",
			"app: Microsoft.Web/sites@2024-11-01: properties.siteConfig.appSettings[0].vaule: not a property (did you mean value?)"},
		{"@2024-11-30", "@2023-01-31",
			"agent: Microsoft.ManagedIdentity/userAssignedIdentities@2023-01-31: no type definition for this resource type and apiVersion"},
		{"principalId: app.identity.principalId, principalType: 'ServicePrincipal', roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.reader)",
			"principalType: 'ServicePrincipal', roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.reader)",
			"targetReaderRole: Microsoft.Authorization/roleAssignments@2022-04-01: properties.principalId: required property missing"},
	} {
		if !strings.Contains(src, tc.old) {
			t.Fatalf("main.bicep no longer holds %q", tc.old)
		}
		_, errs := checkBicep(t, c, strings.Replace(src, tc.old, tc.new, 1))
		if len(errs) != 1 || errs[0] != tc.want {
			t.Errorf("%q → %q: errors\n%s\nwant\n%s", tc.old, tc.new, strings.Join(errs, "\n"), tc.want)
		}
	}
}

// The modules are checked as main.bicep is: a deliberate mistake in each is found, and nothing else.
func TestModuleMistakesAreFound(t *testing.T) {
	c := load(t)
	modules := moduleFiles(t, mainBicep(t))
	for _, tc := range []struct{ file, old, new, want string }{
		{"modules/recovery-group.bicep", "  location: location\n", "",
			"recovery: Microsoft.Resources/resourceGroups@2025-04-01: location: required property missing"},
		{"modules/subnet-join.bicep", "assignableScopes: [", "assignableScope: [",
			"subnetJoinRoleDefinition: Microsoft.Authorization/roleDefinitions@2022-04-01: properties.assignableScope: not a property (did you mean assignableScopes?)"},
		{"modules/recovery-roles.bicep", "roleDefinitionId: subscriptionResourceId", "roleDefinitonId: subscriptionResourceId",
			"recoveryContributorRole: Microsoft.Authorization/roleAssignments@2022-04-01: properties.roleDefinitionId: required property missing\n" +
				"recoveryContributorRole: Microsoft.Authorization/roleAssignments@2022-04-01: properties.roleDefinitonId: not a property (did you mean roleDefinitionId?)"},
	} {
		src, ok := modules[tc.file]
		if !ok || !strings.Contains(src, tc.old) {
			t.Fatalf("%s no longer holds %q", tc.file, tc.old)
		}
		_, errs := checkBicep(t, c, strings.Replace(src, tc.old, tc.new, 1))
		got := strings.Join(errs, "\n")
		if got != tc.want {
			t.Errorf("%s: %q → %q: errors\n%s\nwant\n%s", tc.file, tc.old, tc.new, got, tc.want)
		}
	}
}

// ARM evaluates a conditional module's scope in preflight even when the condition is false
// (Azure/bicep#1492): no module's scope may index the parts of a parameter whose default is empty, or
// the template fails preflight with the default.
func TestModuleScopesSurviveEmptyParameters(t *testing.T) {
	src := mainBicep(t)
	emptyDefault := regexp.MustCompile(`(?m)^param (\w+) string = ''$`)
	params := emptyDefault.FindAllStringSubmatch(src, -1)
	if len(params) == 0 {
		t.Fatal("found no parameter with an empty default: the check reads nothing")
	}
	for _, p := range params {
		indexed := regexp.MustCompile(`split\(` + p[1] + `\s*,[^)]*\)\[`)
		if loc := indexed.FindStringIndex(src); loc != nil {
			t.Errorf("main.bicep:%d indexes split(%s, …), whose default '' has no parts: use a placeholder id when it is empty",
				strings.Count(src[:loc[0]], "\n")+1, p[1])
		}
	}
	if !regexp.MustCompile(`split\(targetVirtualNetworkId\s*,[^)]*\)\[`).MatchString("scope: resourceGroup(split(targetVirtualNetworkId, '/')[2])") {
		t.Error("the check misses the indexing it looks for")
	}
}

// azd's side: main.parameters.json names only parameters main.bicep declares, and azure.yaml's service is
// the one the function app is tagged with, packaged from dist/app.
func TestAzdProject(t *testing.T) {
	src := mainBicep(t)
	declared := map[string]bool{}
	for _, l := range strings.Split(src, "\n") {
		if f := strings.Fields(l); len(f) >= 2 && f[0] == "param" {
			declared[f[1]] = true
		}
	}
	data, err := os.ReadFile(filepath.Join("..", "..", "..", "infra", "main.parameters.json"))
	if err != nil {
		t.Fatal(err)
	}
	var params struct{ Parameters map[string]any }
	if err := json.Unmarshal(data, &params); err != nil {
		t.Fatal(err)
	}
	for name := range params.Parameters {
		if !declared[name] {
			t.Errorf("main.parameters.json sets %s, which main.bicep does not declare", name)
		}
	}
	yaml, err := os.ReadFile(filepath.Join("..", "..", "..", "azure.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"\n  path: infra\n", "\n  functions:\n", "    project: .\n", "    language: custom\n", "    host: function\n", "    dist: dist/app\n", "run: make package\n"} {
		if !strings.Contains(string(yaml), want) {
			t.Errorf("azure.yaml lacks %q", want)
		}
	}
}
