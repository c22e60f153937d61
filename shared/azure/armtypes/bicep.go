package armtypes

import (
	"fmt"
	"strconv"
	"strings"
)

// BicepResource is one resource declaration of a Bicep file.
type BicepResource struct {
	Symbol     string
	Type       string // the full resource type (a nested declaration's type is prefixed with its parent's)
	APIVersion string
	Existing   bool
	// Body is the declaration's object: nested maps and []any of string, int64, bool and nil; values the
	// reader does not evaluate (references, function calls, interpolated strings, operators) are Expr. The
	// body of a `[for …: {…}]` loop is its object; of `if (…) {…}`, its object.
	Body map[string]any
	Line int
}

// ParseBicep finds the resource declarations of a Bicep file — `resource sym 'type@api' [existing] =`
// followed by an object, `if (cond) {…}` or `[for … : {…}]`, at the top level or nested in another
// resource's body — and reads their bodies. It reads what Standby's templates use, not all of Bicep
// (no multi-line ternaries, no lambdas).
func ParseBicep(src string) ([]BicepResource, error) {
	r := &bicepReader{s: src}
	if err := r.top(); err != nil {
		return r.out, err
	}
	return r.out, nil
}

type bicepReader struct {
	s   string
	i   int
	out []BicepResource
}

func (r *bicepReader) errf(format string, args ...any) error {
	return fmt.Errorf("bicep line %d: %s", r.line(r.i), fmt.Sprintf(format, args...))
}

func (r *bicepReader) line(pos int) int { return strings.Count(r.s[:min(pos, len(r.s))], "\n") + 1 }

func (r *bicepReader) eof() bool { return r.i >= len(r.s) }

func (r *bicepReader) peek(p string) bool { return strings.HasPrefix(r.s[r.i:], p) }

// top scans the file for resource declarations at the start of a line, skipping everything else.
func (r *bicepReader) top() error {
	lineStart := true
	for !r.eof() {
		c := r.s[r.i]
		switch {
		case c == '\n':
			lineStart = true
			r.i++
			continue
		case c == ' ' || c == '\t' || c == '\r':
			r.i++
			continue
		case r.peek("//") || r.peek("/*"):
			r.skipSpace()
			continue
		case c == '\'':
			if _, err := r.str(); err != nil {
				return err
			}
		case lineStart && r.keyword("resource"):
			if err := r.declaration(""); err != nil {
				return err
			}
		case isWord(c):
			r.ident()
		default:
			r.i++
		}
		lineStart = false
	}
	return nil
}

// declaration reads `resource sym 'type@api' [existing] = value`; parent is the enclosing resource's
// type for a nested declaration.
func (r *bicepReader) declaration(parent string) error {
	line := r.line(r.i)
	r.i += len("resource")
	r.skipSpace()
	sym := r.ident()
	if sym == "" {
		return r.errf("resource without a symbol")
	}
	r.skipSpace()
	if !r.peek("'") {
		return r.errf("resource %s: want its type string", sym)
	}
	ts, err := r.str()
	if err != nil {
		return err
	}
	typ, ok := ts.(string)
	at := strings.LastIndexByte(typ, '@')
	if !ok || at < 0 {
		return r.errf("resource %s: type %v is not 'type@apiVersion'", sym, ts)
	}
	res := BicepResource{Symbol: sym, Type: typ[:at], APIVersion: typ[at+1:], Line: line}
	if parent != "" && !strings.Contains(res.Type, "/") {
		res.Type = parent + "/" + res.Type
	}
	r.skipSpace()
	if r.keyword("existing") {
		res.Existing = true
		r.ident()
		r.skipSpace()
	}
	if !r.peek("=") {
		return r.errf("resource %s: want '='", sym)
	}
	r.i++
	r.skipWS()
	idx := len(r.out)
	r.out = append(r.out, res) // nested declarations follow their parent
	body, err := r.resourceValue(res.Type)
	if err != nil {
		return fmt.Errorf("resource %s: %w", sym, err)
	}
	r.out[idx].Body = body
	return nil
}

// resourceValue reads `{…}`, `if (…) {…}` or `[for … : {…}]`.
func (r *bicepReader) resourceValue(typ string) (map[string]any, error) {
	switch {
	case r.peek("{"):
		return r.object(typ)
	case r.keyword("if"):
		if err := r.skipCondition(); err != nil {
			return nil, err
		}
		return r.resourceValue(typ)
	case r.peek("["):
		r.i++
		r.skipWS()
		if !r.keyword("for") {
			return nil, r.errf("want a for loop")
		}
		body, err := r.loopBody(func() (any, error) { return r.resourceValue(typ) })
		if err != nil {
			return nil, err
		}
		return body.(map[string]any), nil
	}
	return nil, r.errf("want a resource body")
}

// object reads `{ key: value … }`; entries are separated by newlines or commas. typ is the resource
// type when the object is a resource body (for nested resource declarations), else "".
func (r *bicepReader) object(typ string) (map[string]any, error) {
	r.i++ // {
	m := map[string]any{}
	for {
		if done, err := r.nextEntry("}", "object"); done || err != nil {
			return m, err
		}
		var key string
		if r.peek("'") {
			k, err := r.str()
			if err != nil {
				return nil, err
			}
			s, ok := k.(string)
			if !ok {
				return nil, r.errf("interpolated property name")
			}
			key = s
		} else {
			start := r.i
			key = r.ident()
			if key == "" {
				return nil, r.errf("want a property name, got %q", r.s[r.i:min(r.i+20, len(r.s))])
			}
			if key == "resource" {
				r.skipSpace()
				if !r.peek(":") {
					if typ == "" {
						return nil, r.errf("nested resource outside a resource body")
					}
					r.i = start
					if err := r.declaration(typ); err != nil {
						return nil, err
					}
					continue
				}
			}
		}
		r.skipSpace()
		if !r.peek(":") {
			return nil, r.errf("want ':' after %s", key)
		}
		r.i++
		r.skipSpace()
		v, err := r.value()
		if err != nil {
			return nil, err
		}
		m[key] = v
	}
}

// nextEntry moves to the next entry of an object or array (entries are separated by newlines or
// commas) and reports whether the closing bracket ended it instead.
func (r *bicepReader) nextEntry(closing, what string) (bool, error) {
	r.skipWS()
	for r.peek(",") {
		r.i++
		r.skipWS()
	}
	if r.eof() {
		return false, r.errf("unterminated %s", what)
	}
	if r.peek(closing) {
		r.i++
		return true, nil
	}
	return false, nil
}

// skipCondition skips an `if (…)` condition, when one comes next.
func (r *bicepReader) skipCondition() error {
	if !r.keyword("if") {
		return nil
	}
	r.i += 2
	r.skipWS()
	if !r.peek("(") {
		return r.errf("want '(' after if")
	}
	if err := r.skipBalanced(); err != nil {
		return err
	}
	r.skipWS()
	return nil
}

// loopBody reads the rest of `[for x in y: [if (…)] body]` once "[for" is next: the header, the
// condition, the body (read by body) and the closing bracket.
func (r *bicepReader) loopBody(body func() (any, error)) (any, error) {
	if err := r.forHeader(); err != nil {
		return nil, err
	}
	r.skipWS()
	if err := r.skipCondition(); err != nil {
		return nil, err
	}
	v, err := body()
	if err != nil {
		return nil, err
	}
	r.skipWS()
	if !r.peek("]") {
		return nil, r.errf("want ']' closing the loop")
	}
	r.i++
	return v, nil
}

// array reads `[ a b … ]` (newline- or comma-separated) or a `[for … : value]` loop, which reads as a
// one-element array of its body.
func (r *bicepReader) array() ([]any, error) {
	r.i++ // [
	r.skipWS()
	if r.keyword("for") {
		v, err := r.loopBody(r.value)
		if err != nil {
			return nil, err
		}
		return []any{v}, nil
	}
	a := []any{}
	for {
		if done, err := r.nextEntry("]", "array"); done || err != nil {
			return a, err
		}
		v, err := r.value()
		if err != nil {
			return nil, err
		}
		a = append(a, v)
	}
}

// value reads one value: a literal, object or array when it is only that, else an Expr holding the
// expression's text.
func (r *bicepReader) value() (any, error) {
	start := r.i
	var v any
	var err error
	switch c := r.s[r.i]; {
	case c == '{':
		v, err = r.object("")
	case c == '[':
		v, err = r.array()
	case c == '\'':
		v, err = r.str()
	case c >= '0' && c <= '9' || c == '-' && r.i+1 < len(r.s) && r.s[r.i+1] >= '0' && r.s[r.i+1] <= '9':
		j := r.i + 1
		for j < len(r.s) && r.s[j] >= '0' && r.s[j] <= '9' {
			j++
		}
		v, err = strconv.ParseInt(r.s[r.i:j], 10, 64)
		r.i = j
	default:
		switch w := r.ident(); w {
		case "true":
			v = true
		case "false":
			v = false
		case "null":
			v = nil
		default:
			r.i = start
			return r.expr()
		}
	}
	if err != nil {
		return nil, err
	}
	// A literal followed by more than a separator is part of an expression ('a' == b ? … : …).
	r.skipSpace()
	if r.eof() || strings.ContainsRune("\n,}]", rune(r.s[r.i])) {
		return v, nil
	}
	r.i = start
	return r.expr()
}
