// Package armtypes checks Azure resource bodies against the published resource type definitions (the
// generated types.md files of Azure/bicep-types-az), without a Bicep compiler or the Azure SDK: unknown
// properties at any depth, missing Required properties and ReadOnly properties set are errors. It also
// reads the resource declarations of a Bicep file (bicep.go), so infra/main.bicep can be checked in a
// unit test, and will check the ARM templates the failover path deploys.
//
//	cat, err := armtypes.Load("../shared/reference/azure-types")
//	errs := cat.Check("Microsoft.Web/sites", "2024-11-01", body)
package armtypes

import (
	"bufio"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
)

// Kind is the shape of a Type.
type Kind int

// The kinds of type the definitions use.
const (
	KindAny Kind = iota
	KindString
	KindInt
	KindBool
	KindLiteral // a string literal: 'value'
	KindUnion   // 'a' | 'b' | string
	KindArray   // T[]
	KindObject  // a link to an object section
)

// Type is one type expression of a property.
type Type struct {
	Kind    Kind
	Literal string  // KindLiteral
	Members []*Type // KindUnion
	Elem    *Type   // KindArray
	Object  *Object // KindObject (resolved after the file is read)

	ref, from string // KindObject before resolution: the anchor linked to, and the section linking
	fromIdx   int
}

// Property is one property of an object type.
type Property struct {
	Name                          string
	Type                          *Type
	Required, ReadOnly, WriteOnly bool
}

// Object is an object type: its properties, the value type of its additional properties when it is a
// dictionary, and — for a discriminated type — its variants (each holding only its own properties).
type Object struct {
	Name          string
	Props         []*Property
	Additional    *Type
	Discriminator string
	Variants      []*Object
}

// Prop finds a property by its exact name.
func (o *Object) Prop(name string) *Property {
	for _, p := range o.Props {
		if p.Name == name {
			return p
		}
	}
	return nil
}

// Catalog holds the resource types of every definition file read.
type Catalog struct {
	resources map[string]*Object // lower(type@apiVersion)
}

// Resource returns the body type of a resource type at an apiVersion (case-insensitive), or nil.
func (c *Catalog) Resource(resourceType, apiVersion string) *Object {
	return c.resources[strings.ToLower(resourceType+"@"+apiVersion)]
}

// Resources lists the type@apiVersion keys the catalog knows, sorted.
func (c *Catalog) Resources() []string {
	keys := make([]string, 0, len(c.resources))
	for k := range c.resources {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// Load reads every <namespace>_<apiVersion>.md definition file in dir.
func Load(dir string) (*Catalog, error) {
	files, err := filepath.Glob(filepath.Join(dir, "*.md"))
	if err != nil {
		return nil, err
	}
	c := &Catalog{resources: map[string]*Object{}}
	n := 0
	for _, f := range files {
		if strings.EqualFold(filepath.Base(f), "README.md") {
			continue
		}
		data, err := os.ReadFile(f)
		if err != nil {
			return nil, err
		}
		res, err := ParseMarkdown(string(data))
		if err != nil {
			return nil, fmt.Errorf("%s: %w", filepath.Base(f), err)
		}
		for k, v := range res {
			c.resources[strings.ToLower(k)] = v
		}
		n++
	}
	if n == 0 {
		return nil, fmt.Errorf("no type definition files in %s", dir)
	}
	return c, nil
}

// section is one "## " section of a definition file.
type section struct {
	title string // the heading after "## "
	lines []string
	line  int // 1-based line of the heading
}

// ParseMarkdown reads one definition file and returns its resource types keyed by "type@apiVersion".
func ParseMarkdown(text string) (map[string]*Object, error) {
	var secs []section
	sc := bufio.NewScanner(strings.NewReader(text))
	sc.Buffer(make([]byte, 1<<20), 1<<24)
	ln := 0
	for sc.Scan() {
		ln++
		l := strings.TrimRight(sc.Text(), " \t\r")
		if strings.HasPrefix(l, "## ") {
			secs = append(secs, section{title: strings.TrimSpace(l[3:]), line: ln})
			continue
		}
		if len(secs) > 0 {
			secs[len(secs)-1].lines = append(secs[len(secs)-1].lines, l)
		}
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}

	// Object sections by anchor (lower-case name). The generated files repeat some names: identical
	// copies are one type; distinct ones are kept in order (see resolve).
	objects := map[string][]*Object{}
	raw := map[string][]string{}
	var links []*Type
	resources := map[string]*Object{}
	for _, s := range secs {
		switch {
		case strings.HasPrefix(s.title, "Function "):
			continue
		case strings.HasPrefix(s.title, "Resource "):
			key := strings.TrimSpace(strings.TrimPrefix(s.title, "Resource "))
			o, l, err := parseSection(key, s, "", 0)
			if err != nil {
				return nil, err
			}
			links = append(links, l...)
			resources[key] = o
		default:
			anchor := strings.ToLower(s.title)
			body := strings.Join(s.lines, "\n")
			dup := false
			for _, r := range raw[anchor] {
				if r == body {
					dup = true
				}
			}
			if dup {
				continue
			}
			o, l, err := parseSection(s.title, s, anchor, len(objects[anchor]))
			if err != nil {
				return nil, err
			}
			links = append(links, l...)
			objects[anchor] = append(objects[anchor], o)
			raw[anchor] = append(raw[anchor], body)
		}
	}
	for _, t := range links {
		cands := objects[t.ref]
		switch {
		case len(cands) == 0:
			return nil, fmt.Errorf("link to #%s: no such section", t.ref)
		case len(cands) > 1 && t.ref == t.from && t.fromIdx+1 < len(cands):
			// A type linking to its own name where the file has two distinct sections of that name
			// (e.g. Tags.tags → the Tags dictionary): the link means the other one.
			t.Object = cands[t.fromIdx+1]
		default:
			t.Object = cands[0]
		}
	}
	return resources, nil
}

// parseSection reads the property lines of one section.
func parseSection(name string, s section, anchor string, idx int) (*Object, []*Type, error) {
	o := &Object{Name: name}
	var links []*Type
	var target *Object // where property lines go; nil before the first "###" heading
	additional := false
	for i, l := range s.lines {
		lineNo := s.line + 1 + i
		switch {
		case strings.HasPrefix(l, "### "):
			h := strings.TrimSpace(l[4:])
			additional = false
			switch h {
			case "Properties", "Base Properties":
				target = o
			case "Additional Properties":
				target, additional = o, true
			default: // a variant of a discriminated type
				v := &Object{Name: h}
				o.Variants = append(o.Variants, v)
				target = v
			}
		case strings.HasPrefix(l, "#### "):
			// "#### Properties" of a variant: the variant is already the target.
		case strings.HasPrefix(l, "* **"):
			end := strings.Index(l, "**: ")
			if end < 0 {
				return nil, nil, fmt.Errorf("line %d: property line without '**: ': %q", lineNo, l)
			}
			pname, rest := l[4:end], l[end+4:]
			switch {
			case pname == "Discriminator":
				o.Discriminator = strings.TrimSpace(rest)
				continue
			case target == nil: // Readable/Writable/Valid Scope(s) and the like
				continue
			}
			p := &typeParser{s: rest}
			t, err := p.parseUnion()
			if err == nil {
				err = p.parseFlags()
			}
			if err != nil {
				return nil, nil, fmt.Errorf("line %d: %s: %w", lineNo, pname, err)
			}
			p.collect(t, &links, anchor, idx)
			if additional && pname == "Additional Properties Type" {
				target.Additional = t
				continue
			}
			target.Props = append(target.Props, &Property{Name: pname, Type: t, Required: p.required, ReadOnly: p.readOnly, WriteOnly: p.writeOnly})
		}
	}
	return o, links, nil
}
