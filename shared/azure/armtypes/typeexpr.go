package armtypes

import (
	"fmt"
	"strings"
)

// The type expressions of the definition files: links, literals, unions, arrays, constraints, flags.

// typeParser reads one type expression and its flags: `[Foo](#foo)[] {minLength: 1} (Required): text`.
type typeParser struct {
	s                             string
	i                             int
	required, readOnly, writeOnly bool
}

func (p *typeParser) peek(prefix string) bool { return strings.HasPrefix(p.s[p.i:], prefix) }

func (p *typeParser) parseUnion() (*Type, error) {
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

func (p *typeParser) parsePostfix() (*Type, error) {
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

func (p *typeParser) parsePrimary() (*Type, error) {
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
func (p *typeParser) skipConstraints() error {
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
func (p *typeParser) parseFlags() error {
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
func (p *typeParser) collect(t *Type, links *[]*Type, from string, idx int) {
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
