package replication

import (
	"strings"
	"testing"
)

func TestParseSource(t *testing.T) {
	managed := "/subscriptions/00000000-0000-0000-0000-000000000001/resourceGroups/rg/providers/Microsoft.Compute/disks/d1"
	for in, want := range map[string]Source{
		"agent":                        {Kind: SourceAgent},
		"nbd:/dev/vdb":                 {Kind: SourceNBD, Ref: "/dev/vdb"},
		"file:/var/img/a.raw":          {Kind: SourceFile, Ref: "/var/img/a.raw"},
		"pageblob:https://a.blob/c/d":  {Kind: SourcePageBlob, Ref: "https://a.blob/c/d"},
		"managed:" + managed:           {Kind: SourceManaged, Ref: managed},
		"file:C:/disk:with:colons.vhd": {Kind: SourceFile, Ref: "C:/disk:with:colons.vhd"},
	} {
		got, err := ParseSource(in)
		if err != nil || got != want || got.String() != in {
			t.Errorf("ParseSource(%q) = %+v, %v (String %q)", in, got, err, got.String())
		}
	}
	for _, bad := range []string{"", "agent:", "nbd:", "file:", "pageblob:ftp://x", "managed:/nope", "tape:/dev/st0", "Agent"} {
		if got, err := ParseSource(bad); err == nil || !strings.Contains(err.Error(), "want nbd:<path>") {
			t.Errorf("ParseSource(%q) = %+v, %v: want the grammar named", bad, got, err)
		}
	}
}

// A page blob source with a query (a SAS) is refused without repeating the query.
func TestPageBlobSourceWithAQueryIsRefused(t *testing.T) {
	for _, in := range []string{"pageblob:https://a.blob/c/d?sv=2024&sig=SECRET", "pageblob:https://a.blob/c/d#sig=SECRET"} {
		if _, err := ParseSource(in); err == nil || strings.Contains(err.Error(), "SECRET") || !strings.Contains(err.Error(), "names the blob only (https://a.blob/c/d?…)") {
			t.Errorf("ParseSource(%q): %v", in, err)
		}
	}
}

// Every kind says what consistency it gives (the API shows it on every disk).
func TestEverySourceKindHasACapture(t *testing.T) {
	for _, k := range SourceKinds {
		if c, ok := captures[k]; !ok || c.Mode != string(k) || c.Note == "" {
			t.Errorf("source kind %s: capture %+v", k, c)
		}
	}
}
