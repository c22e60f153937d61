package armtypes

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// typesDir finds the type definitions: $STANDBY_AZURE_TYPES, else shared/reference/azure-types in this
// directory or a parent (the reference data sits beside the repository's worktrees).
func typesDir(t *testing.T) string {
	t.Helper()
	if d := os.Getenv("STANDBY_AZURE_TYPES"); d != "" {
		return d
	}
	dir, err := filepath.Abs(".")
	if err != nil {
		t.Fatal(err)
	}
	for {
		d := filepath.Join(dir, "shared", "reference", "azure-types")
		if _, err := os.Stat(filepath.Join(d, "README.md")); err == nil {
			return d
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			const why = "no shared/reference/azure-types here or above; set STANDBY_AZURE_TYPES to the type definitions (Azure/bicep-types-az generated types.md files)"
			if os.Getenv("STANDBY_REQUIRE_TYPES") != "" { // make test: the check must run
				t.Fatal(why)
			}
			t.Skip(why)
		}
		dir = parent
	}
}

var catalog *Catalog

func load(t *testing.T) *Catalog {
	t.Helper()
	if catalog == nil {
		c, err := Load(typesDir(t))
		if err != nil {
			t.Fatal(err)
		}
		catalog = c
	}
	return catalog
}

func prop(t *testing.T, o *Object, path ...string) *Property {
	t.Helper()
	var p *Property
	for i, name := range path {
		if p = o.Prop(name); p == nil {
			t.Fatalf("%s has no %s", o.Name, name)
		}
		if i < len(path)-1 {
			if p.Type.Kind != KindObject {
				t.Fatalf("%s.%s is %s, not an object", o.Name, name, p.Type)
			}
			o = p.Type.Object
		}
	}
	return p
}

func TestParseRealTypes(t *testing.T) {
	c := load(t)
	if n := len(c.Resources()); n < 500 {
		t.Fatalf("%d resource types read, want every one of the reference files (>500)", n)
	}
	site := c.Resource("microsoft.web/SITES", "2024-11-01") // case-insensitive
	if site == nil {
		t.Fatal("no Microsoft.Web/sites@2024-11-01")
	}
	if p := prop(t, site, "location"); !p.Required || p.Type.Kind != KindString {
		t.Errorf("sites.location: %+v", p)
	}
	if p := prop(t, site, "id"); !p.ReadOnly {
		t.Errorf("sites.id not ReadOnly")
	}
	rt := prop(t, site, "properties", "functionAppConfig", "runtime", "name")
	if rt.Type.Kind != KindUnion || rt.Type.String() != "'custom' | 'dotnet-isolated' | 'java' | 'node' | 'powershell' | 'python' | string" {
		t.Errorf("runtime.name: %s", rt.Type)
	}
	sc := prop(t, site, "properties", "functionAppConfig", "scaleAndConcurrency")
	if got := prop(t, sc.Type.Object, "alwaysReady").Type; got.Kind != KindArray || got.Elem.Kind != KindObject || got.Elem.Object.Name != "FunctionsAlwaysReadyConfig" {
		t.Errorf("alwaysReady: %s", got)
	}
	if p := prop(t, sc.Type.Object, "instanceMemoryMB"); p.Type.Kind != KindInt {
		t.Errorf("instanceMemoryMB: %s", p.Type)
	}
	// A dictionary: tags.
	if tags := prop(t, site, "tags").Type.Object; tags.Additional == nil || tags.Additional.Kind != KindString || len(tags.Props) != 0 {
		t.Errorf("sites.tags: %+v", tags)
	}
	// Constraints ({pattern: "…{8}…"}) and flags after them.
	kv := c.Resource("Microsoft.KeyVault/vaults", "2025-05-01")
	if p := prop(t, kv, "properties", "tenantId"); !p.Required || p.Type.Kind != KindString {
		t.Errorf("vaults.properties.tenantId: %+v %s", p, p.Type)
	}
	// An array of a parenthesised union.
	ar := prop(t, c.Resource("Microsoft.EventHub/namespaces/authorizationRules", "2024-01-01"), "properties", "rights")
	if ar.Type.String() != "('Listen' | 'Manage' | 'Send' | string)[]" || !ar.Required {
		t.Errorf("rights: %s", ar.Type)
	}
	// A discriminated resource (by name) and a discriminated object (by type).
	pol := c.Resource("Microsoft.Web/sites/basicPublishingCredentialsPolicies", "2024-11-01")
	if pol.Discriminator != "name" || len(pol.Variants) != 2 {
		t.Errorf("basicPublishingCredentialsPolicies: discriminator %q, %d variants", pol.Discriminator, len(pol.Variants))
	}
	agp := prop(t, c.Resource("Microsoft.EventHub/namespaces/applicationGroups", "2024-01-01"), "properties", "policies").Type.Elem.Object
	if agp.Discriminator != "type" || prop(t, agp, "name") == nil || len(agp.Variants) != 1 || agp.Variants[0].Name != "ThrottlingPolicy" {
		t.Errorf("ApplicationGroupPolicy: %+v", agp)
	}
	// Two distinct sections named Tags: the self-link means the dictionary.
	tg := prop(t, c.Resource("Microsoft.Resources/tags", "2025-04-01"), "properties").Type.Object
	if inner := prop(t, tg, "tags").Type.Object; inner == tg || inner.Additional == nil {
		t.Errorf("Tags.tags does not resolve to the dictionary")
	}
}

func TestParseMarkdownForms(t *testing.T) {
	md := "# X @ 1\n\n## Resource X/y@1\n* **Readable Scope(s)**: ResourceGroup\n### Properties\n" +
		"* **name**: string {pattern: \"^a{1,2}$\"} (Required, DeployTimeConstant): The name\n" +
		"* **list**: ([Item](#item) | string)[]: items\n" +
		"* **mode**: 'a' | 'b' (WriteOnly)\n" +
		"* **bad**: int\ncontinued description line\n\n" +
		"## Item\n### Properties\n* **v**: any\n### Additional Properties\n* **Additional Properties Type**: int[]\n"
	res, err := ParseMarkdown(md)
	if err != nil {
		t.Fatal(err)
	}
	o := res["X/y@1"]
	if o == nil || len(o.Props) != 4 {
		t.Fatalf("got %+v", res)
	}
	if o.Props[1].Type.String() != "(Item | string)[]" || !o.Props[2].WriteOnly || !o.Props[0].Required {
		t.Errorf("props: %s %+v %+v", o.Props[1].Type, o.Props[2], o.Props[0])
	}
	item := o.Props[1].Type.Elem.Members[0].Object
	if item.Additional.String() != "int[]" || item.Props[0].Type.Kind != KindAny {
		t.Errorf("item: %+v", item)
	}
	for _, bad := range []string{
		"## Resource X/y@1\n### Properties\n* **a**: float\n",
		"## Resource X/y@1\n### Properties\n* **a**: string (Sometimes)\n",
		"## Resource X/y@1\n### Properties\n* **a**: [Nope](#nope)\n",
	} {
		if _, err := ParseMarkdown(bad); err == nil {
			t.Errorf("no error for %q", bad)
		}
	}
}

func TestCheckJSONBody(t *testing.T) {
	c := load(t)
	var body map[string]any
	err := json.Unmarshal([]byte(`{
		"type": "Microsoft.Web/sites", "apiVersion": "2024-11-01", "dependsOn": [],
		"name": "app", "location": "[parameters('location')]", "id": "x",
		"identity": {"type": "Sometimes"},
		"properties": {
			"httpsOnly": "yes",
			"functionAppConfig": {"runtime": {"nmae": "custom"}, "scaleAndConcurrency": {"instanceMemoryMB": 2048.5}},
			"siteConfig": {"appSettings": [{"name": "a", "value": "b"}, {"name": "c", "valeu": "d"}]}
		}}`), &body)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{
		"Microsoft.Web/sites@2024-11-01: id: read-only property",
		"Microsoft.Web/sites@2024-11-01: identity.type: want one of 'None' | 'SystemAssigned' | 'SystemAssigned, UserAssigned' | 'UserAssigned', got 'Sometimes'",
		"Microsoft.Web/sites@2024-11-01: properties.functionAppConfig.runtime.nmae: not a property (did you mean name?)",
		"Microsoft.Web/sites@2024-11-01: properties.functionAppConfig.scaleAndConcurrency.instanceMemoryMB: want an int, got a number",
		"Microsoft.Web/sites@2024-11-01: properties.httpsOnly: want a bool, got a string",
		"Microsoft.Web/sites@2024-11-01: properties.siteConfig.appSettings[1].valeu: not a property (did you mean value?)",
	}
	assertErrors(t, c.Check("Microsoft.Web/sites", "2024-11-01", body), want)

	// Required, at the top and inside; an unknown type.
	assertErrors(t, c.Check("Microsoft.KeyVault/vaults", "2025-05-01", map[string]any{"name": "v", "properties": map[string]any{"sku": map[string]any{"family": "A"}}}), []string{
		"Microsoft.KeyVault/vaults@2025-05-01: location: required property missing",
		"Microsoft.KeyVault/vaults@2025-05-01: properties.sku.name: required property missing",
		"Microsoft.KeyVault/vaults@2025-05-01: properties.tenantId: required property missing",
	})
	if errs := c.Check("Microsoft.Web/sites", "2099-01-01", body); len(errs) != 1 || !strings.Contains(errs[0].Error(), "no type definition") {
		t.Errorf("unknown apiVersion: %v", errs)
	}
	// Discriminated: the variant's properties apply when the discriminator selects it.
	pol := map[string]any{"name": "ftp", "properties": map[string]any{"allow": false}}
	assertErrors(t, c.Check("Microsoft.Web/sites/basicPublishingCredentialsPolicies", "2024-11-01", pol), nil)
	pol["name"] = "sftp"
	assertErrors(t, c.Check("Microsoft.Web/sites/basicPublishingCredentialsPolicies", "2024-11-01", pol), []string{
		"Microsoft.Web/sites/basicPublishingCredentialsPolicies@2024-11-01: name: 'sftp' selects no variant of Microsoft.Web/sites/basicPublishingCredentialsPolicies@2024-11-01",
	})
}

func assertErrors(t *testing.T, errs []error, want []string) {
	t.Helper()
	var got []string
	for _, e := range errs {
		got = append(got, e.Error())
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("errors:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

func TestBicepReader(t *testing.T) {
	src := `
// a comment with resource 'x@1' in it
param p string = 'resource'
@description('d')
resource st 'Microsoft.Storage/storageAccounts@2023-05-01' = {
  name: 'n\'${p}'
  location: 'west\\\'s'
  sku: { name: 'Standard_LRS', tier: 'Standard' } // trailing comment
  tags: {
    'azd-service-name': 'functions'
    n: -3
    b: true
    z: null
  }
  properties: {
    list: [
      'a'
      { k: 'v' }
    ]
    inline: [1, 2]
    call: guid(st.id, 'x', {a: 1})
    cond: p == 'a' ? 'b' : 'c'
    multi: '''
x'y'''
    loop: [for i in range(0, 2): { i: i }]
  }
  resource blobs 'blobServices@2023-05-01' = {
    name: 'default'
  }
}
resource r 'Microsoft.Authorization/roleAssignments@2022-04-01' = [for role in [1, 2]: if (true) {
  name: guid(role)
}]
resource c 'A/b@1' = if (!empty(p)) {
  name: 'x'
}
resource e 'A/b@1' existing = {
  name: 'x'
}
`
	res, err := ParseBicep(src)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, r := range res {
		names = append(names, r.Symbol+" "+r.Type+"@"+r.APIVersion)
	}
	if got := strings.Join(names, ", "); got != "st Microsoft.Storage/storageAccounts@2023-05-01, blobs Microsoft.Storage/storageAccounts/blobServices@2023-05-01, r Microsoft.Authorization/roleAssignments@2022-04-01, c A/b@1, e A/b@1" {
		t.Fatalf("declarations: %s", got)
	}
	if !res[4].Existing || res[0].Line != 5 {
		t.Errorf("existing %v, line %d", res[4].Existing, res[0].Line)
	}
	b, _ := json.Marshal(res[0].Body)
	want := `{"location":"west\\'s","name":"'n\\'${p}'","properties":{"call":"guid(st.id, 'x', {a: 1})","cond":"p == 'a' ? 'b' : 'c'","inline":[1,2],"list":["a",{"k":"v"}],"loop":[{"i":"i"}],"multi":"x'y"},"sku":{"name":"Standard_LRS","tier":"Standard"},"tags":{"azd-service-name":"functions","b":true,"n":-3,"z":null}}`
	if string(b) != want {
		t.Errorf("body:\n%s\nwant:\n%s", b, want)
	}
	if _, ok := res[0].Body["name"].(Expr); !ok {
		t.Errorf("an interpolated string is an Expr")
	}
	if res[2].Body["name"] != Expr("guid(role)") || res[1].Body["name"] != "default" {
		t.Errorf("loop body %v, nested body %v", res[2].Body, res[1].Body)
	}
	for _, bad := range []string{"resource x 'A@1' = {\n  a 'b'\n}", "resource x 'A@1' = {\n  a: 'b\n}", "resource x 'A' = {}"} {
		if _, err := ParseBicep(bad); err == nil {
			t.Errorf("no error for %q", bad)
		}
	}
}
