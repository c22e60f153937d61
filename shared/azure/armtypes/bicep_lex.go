package armtypes

// The lexical side of the Bicep reader: blanks and comments, words, strings, bracketed groups and
// the text of expressions it does not evaluate.

import (
	"strconv"
	"strings"
)

// skipSpace skips blanks and comments on the current line (a /* */ comment may span lines).
func (r *bicepReader) skipSpace() {
	for !r.eof() {
		switch {
		case r.s[r.i] == ' ' || r.s[r.i] == '\t' || r.s[r.i] == '\r':
			r.i++
		case r.peek("//"):
			for !r.eof() && r.s[r.i] != '\n' {
				r.i++
			}
		case r.peek("/*"):
			end := strings.Index(r.s[r.i+2:], "*/")
			if end < 0 {
				r.i = len(r.s)
			} else {
				r.i += end + 4
			}
		default:
			return
		}
	}
}

// skipWS skips blanks, comments and newlines.
func (r *bicepReader) skipWS() {
	for {
		r.skipSpace()
		if r.eof() || r.s[r.i] != '\n' {
			return
		}
		r.i++
	}
}

// keyword: the word w is next (not a prefix of a longer word).
func (r *bicepReader) keyword(w string) bool {
	return r.peek(w) && (r.i+len(w) == len(r.s) || !isWord(r.s[r.i+len(w)]))
}

func (r *bicepReader) ident() string {
	start := r.i
	for !r.eof() && isWord(r.s[r.i]) {
		r.i++
	}
	return r.s[start:r.i]
}

// forHeader skips `for x in y:` up to and including the colon at depth 0.
func (r *bicepReader) forHeader() error {
	return r.scan("unterminated for loop", func(c byte, depth int) bool { return c == ':' && depth == 0 })
}

// skipBalanced skips a bracketed group starting at the current ( [ or {.
func (r *bicepReader) skipBalanced() error {
	return r.scan("unbalanced brackets", func(c byte, depth int) bool {
		return (c == ')' || c == ']' || c == '}') && depth == 0
	})
}

// scan walks on past strings, keeping the bracket depth, until stop says the character just passed
// (at the depth after it) ends the walk.
func (r *bicepReader) scan(unterminated string, stop func(c byte, depth int) bool) error {
	depth := 0
	for !r.eof() {
		c := r.s[r.i]
		switch c {
		case '\'':
			if _, err := r.str(); err != nil {
				return err
			}
			continue
		case '(', '[', '{':
			depth++
		case ')', ']', '}':
			depth--
		}
		r.i++
		if stop(c, depth) {
			return nil
		}
	}
	return r.errf("%s", unterminated)
}

// expr reads an expression up to a newline, comma or closing bracket at depth 0.
func (r *bicepReader) expr() (any, error) {
	start, depth := r.i, 0
	for !r.eof() {
		c := r.s[r.i]
		switch {
		case c == '\'':
			if _, err := r.str(); err != nil {
				return nil, err
			}
			continue
		case r.peek("//") || r.peek("/*"):
			if depth == 0 {
				return Expr(strings.TrimSpace(r.s[start:r.i])), nil
			}
			r.skipSpace()
			continue
		case c == '(' || c == '[' || c == '{':
			depth++
		case c == ')' || c == ']' || c == '}':
			if depth == 0 {
				return Expr(strings.TrimSpace(r.s[start:r.i])), nil
			}
			depth--
		case (c == '\n' || c == ',') && depth == 0:
			return Expr(strings.TrimSpace(r.s[start:r.i])), nil
		}
		r.i++
	}
	return Expr(strings.TrimSpace(r.s[start:r.i])), nil
}

// str reads a string literal: '…' with escapes, or a multi-line string (three quotes) verbatim, less
// a newline right after its opening quotes. An interpolated string ('${…}')
// is an Expr of its source text.
func (r *bicepReader) str() (any, error) {
	start := r.i
	if r.peek("'''") {
		end := strings.Index(r.s[r.i+3:], "'''")
		if end < 0 {
			return nil, r.errf("unterminated multi-line string")
		}
		r.i += end + 6
		v := r.s[start+3 : r.i-3]
		if strings.HasPrefix(v, "\r\n") {
			v = v[2:]
		} else if strings.HasPrefix(v, "\n") {
			v = v[1:]
		}
		return v, nil
	}
	r.i++
	var b strings.Builder
	interpolated := false
	for !r.eof() {
		c := r.s[r.i]
		switch {
		case c == '\'':
			r.i++
			if interpolated {
				return Expr(r.s[start:r.i]), nil
			}
			return b.String(), nil
		case c == '\\' && r.i+1 < len(r.s):
			r.i++
			switch e := r.s[r.i]; e {
			case 'n':
				b.WriteByte('\n')
			case 'r':
				b.WriteByte('\r')
			case 't':
				b.WriteByte('\t')
			case 'u': // \u{hex}
				end := strings.IndexByte(r.s[r.i:], '}')
				if !r.peek("u{") || end < 0 {
					return nil, r.errf("bad \\u escape")
				}
				n, err := strconv.ParseUint(r.s[r.i+2:r.i+end], 16, 32)
				if err != nil {
					return nil, r.errf("bad \\u escape: %v", err)
				}
				b.WriteRune(rune(n))
				r.i += end
			default: // \\ \' \$
				b.WriteByte(e)
			}
			r.i++
		case r.peek("${"):
			interpolated = true
			r.i++ // at '{'
			if err := r.skipBalanced(); err != nil {
				return nil, err
			}
		case c == '\n':
			return nil, r.errf("unterminated string")
		default:
			b.WriteByte(c)
			r.i++
		}
	}
	return nil, r.errf("unterminated string")
}
