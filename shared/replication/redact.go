package replication

import (
	"context"
	"log/slog"
	"regexp"
)

// Redact is the one place secrets are taken out of text that leaves the process — log records, health
// answers, problem responses, job results and errors: SAS signatures and tokens in URLs, account and
// shared-access keys in connection strings, bearer tokens, function keys given as ?code=.
func Redact(s string) string {
	s = sasQuery.ReplaceAllString(s, "?<redacted>")
	s = bareSecret.ReplaceAllString(s, "$1=<redacted>")
	s = connKey.ReplaceAllString(s, "$1=<redacted>")
	return bearerToken.ReplaceAllString(s, "Bearer <redacted>")
}

var (
	sasQuery    = regexp.MustCompile(`\?[^\s"'<>]*(?i:sig|token|sv|se|code)=[^\s"'<>]*`)
	bareSecret  = regexp.MustCompile(`(?i)\b(sig|access_token|token|code|x-functions-key)=[^&\s"'<>;]+`)
	connKey     = regexp.MustCompile(`(?i)\b(AccountKey|SharedAccessKey|SharedAccessSignature|ClientSecret)=[^;\s"'<>]+`)
	bearerToken = regexp.MustCompile(`(?i)bearer\s+[A-Za-z0-9._~+/=-]+`)
)

// RedactingHandler wraps a log handler so that no record it writes holds a secret (Redact on the
// message, every string attribute and every error).
func RedactingHandler(h slog.Handler) slog.Handler { return redacting{h} }

type redacting struct{ slog.Handler }

func (r redacting) Handle(ctx context.Context, rec slog.Record) error {
	out := slog.NewRecord(rec.Time, rec.Level, Redact(rec.Message), rec.PC)
	rec.Attrs(func(a slog.Attr) bool {
		out.AddAttrs(redactAttr(a))
		return true
	})
	return r.Handler.Handle(ctx, out)
}

func (r redacting) WithAttrs(attrs []slog.Attr) slog.Handler {
	clean := make([]slog.Attr, len(attrs))
	for i, a := range attrs {
		clean[i] = redactAttr(a)
	}
	return redacting{r.Handler.WithAttrs(clean)}
}

func (r redacting) WithGroup(name string) slog.Handler { return redacting{r.Handler.WithGroup(name)} }

func redactAttr(a slog.Attr) slog.Attr {
	v := a.Value.Resolve()
	switch v.Kind() {
	case slog.KindString:
		return slog.String(a.Key, Redact(v.String()))
	case slog.KindGroup:
		attrs := v.Group()
		clean := make([]any, len(attrs))
		for i, g := range attrs {
			clean[i] = redactAttr(g)
		}
		return slog.Group(a.Key, clean...)
	case slog.KindAny:
		if err, ok := v.Any().(error); ok {
			return slog.String(a.Key, Redact(err.Error()))
		}
	}
	return a
}
