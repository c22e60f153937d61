package apiv1

import (
	"encoding/json"
	"maps"
	"testing"

	"github.com/standby-dr/standby/shared/api/apiv1/internal/gendocs"
)

// docs_gen.go is what the wire types' comments say now (run go generate ./shared/api/apiv1 after a change).
func TestFieldDocsAreCurrent(t *testing.T) {
	docs, err := gendocs.Collect(".")
	if err != nil {
		t.Fatal(err)
	}
	if !maps.Equal(docs, fieldDocs) {
		t.Fatal("docs_gen.go is stale: run go generate ./shared/api/apiv1")
	}
}

// Every property of every schema in the OpenAPI document says what it means.
func TestEveryPropertyIsDescribed(t *testing.T) {
	var doc struct {
		Components struct {
			Schemas map[string]struct {
				Properties map[string]map[string]any `json:"properties"`
			} `json:"schemas"`
		} `json:"components"`
	}
	if err := json.Unmarshal(OpenAPI(), &doc); err != nil {
		t.Fatal(err)
	}
	described, total := 0, 0
	for name, s := range doc.Components.Schemas {
		for prop, p := range s.Properties {
			total++
			if d, _ := p["description"].(string); d != "" {
				described++
			} else {
				t.Errorf("%s.%s has no description", name, prop)
			}
		}
	}
	t.Logf("%d of %d properties described", described, total)
}
