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
			p := &Parser{s: rest}
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

// Parser reads one type expression and its flags: `[Foo](#foo)[] {minLength: 1} (Required): text`.
type Parser struct {
	s                             string
	i                             int
	required, readOnly, writeOnly bool
}

func (p *Parser) peek(prefix string) bool { return strings.HasPrefix(p.s[p.i:], prefix) }

func (p *Parser) parseUnion() (*Type, error) {
	t, err := p.parsePostfix()
	if err != nil {
		return nil, err
	}
	if !p.peek(" | ") {
		return t, nil
	}
	u := &Type{Kind: KindUnion, Members: []*Type{t}}
	for p.peek(" | ") {
		p.i += 3
		m, err := p.parsePostfix()
		if err != nil {
			return nil, err
		}
		u.Members = append(u.Members, m)
	}
	return u, nil
}

func (p *Parser) parsePostfix() (*Type, error) {
	t, err := p.parsePrimary()
	if err != nil {
		return nil, err
	}
	for {
		switch {
		case p.peek("[]"):
			p.i += 2
			t = &Type{Kind: KindArray, Elem: t}
		case p.peek(" {"):
			if err := p.skipConstraints(); err != nil {
				return nil, err
			}
		default:
			return t, nil
		}
	}
}

func (p *Parser) parsePrimary() (*Type, error) {
	rest := p.s[p.i:]
	switch {
	case strings.HasPrefix(rest, "("):
		p.i++
		t, err := p.parseUnion()
		if err != nil {
			return nil, err
		}
		if !p.peek(")") {
			return nil, fmt.Errorf("col %d: want ')'", p.i)
		}
		p.i++
		return t, nil
	case strings.HasPrefix(rest, "'"):
		end := strings.IndexByte(rest[1:], '\'')
		if end < 0 {
			return nil, fmt.Errorf("col %d: unterminated literal", p.i)
		}
		p.i += end + 2
		return &Type{Kind: KindLiteral, Literal: rest[1 : end+1]}, nil
	case strings.HasPrefix(rest, "["):
		close := strings.Index(rest, "](#")
		end := strings.IndexByte(rest, ')')
		if close < 0 || end < close {
			return nil, fmt.Errorf("col %d: bad link", p.i)
		}
		p.i += end + 1
		return &Type{Kind: KindObject, ref: rest[close+3 : end]}, nil
	}
	for _, k := range []struct {
		word string
		kind Kind
	}{{"string", KindString}, {"int", KindInt}, {"bool", KindBool}, {"any", KindAny}} {
		if strings.HasPrefix(rest, k.word) && (len(rest) == len(k.word) || !isWord(rest[len(k.word)])) {
			p.i += len(k.word)
			return &Type{Kind: k.kind}, nil
		}
	}
	return nil, fmt.Errorf("col %d: unknown type at %q", p.i, rest)
}

func isWord(b byte) bool {
	return b == '_' || b >= 'a' && b <= 'z' || b >= 'A' && b <= 'Z' || b >= '0' && b <= '9'
}

// skipConstraints skips " {minLength: 1, pattern: "…"}" (patterns may hold braces).
func (p *Parser) skipConstraints() error {
	p.i += 2
	for inStr := false; p.i < len(p.s); p.i++ {
		switch c := p.s[p.i]; {
		case inStr && c == '\\':
			p.i++
		case c == '"':
			inStr = !inStr
		case !inStr && c == '}':
			p.i++
			return nil
		}
	}
	return fmt.Errorf("unterminated constraints")
}

// parseFlags reads " (Required, ReadOnly)" and checks that only a description follows.
func (p *Parser) parseFlags() error {
	if p.peek(" (") {
		end := strings.IndexByte(p.s[p.i:], ')')
		if end < 0 {
			return fmt.Errorf("unterminated flags")
		}
		for _, f := range strings.Split(p.s[p.i+2:p.i+end], ",") {
			switch strings.TrimSpace(f) {
			case "Required":
				p.required = true
			case "ReadOnly":
				p.readOnly = true
			case "WriteOnly":
				p.writeOnly = true
			case "DeployTimeConstant", "Identifier":
			default:
				return fmt.Errorf("unknown flag %q", f)
			}
		}
		p.i += end + 1
	}
	if rest := p.s[p.i:]; rest != "" && !strings.HasPrefix(rest, ":") {
		return fmt.Errorf("col %d: unexpected %q after the type", p.i, rest)
	}
	return nil
}

// collect records the unresolved links of t.
func (p *Parser) collect(t *Type, links *[]*Type, from string, idx int) {
	switch t.Kind {
	case KindObject:
		t.from, t.fromIdx = from, idx
		*links = append(*links, t)
	case KindArray:
		p.collect(t.Elem, links, from, idx)
	case KindUnion:
		for _, m := range t.Members {
			p.collect(m, links, from, idx)
		}
	}
}

// String renders a type the way the definition files write it.
func (t *Type) String() string {
	switch t.Kind {
	case KindString:
		return "string"
	case KindInt:
		return "int"
	case KindBool:
		return "bool"
	case KindLiteral:
		return "'" + t.Literal + "'"
	case KindUnion:
		parts := make([]string, len(t.Members))
		for i, m := range t.Members {
			parts[i] = m.String()
		}
		return strings.Join(parts, " | ")
	case KindArray:
		if t.Elem.Kind == KindUnion {
			return "(" + t.Elem.String() + ")[]"
		}
		return t.Elem.String() + "[]"
	case KindObject:
		if t.Object != nil {
			return t.Object.Name
		}
		return "#" + t.ref
	}
	return "any"
}
