package schema

import (
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"
)

// refRewrite is Rewrite written without a regular expression: "pgq."
// becomes "<name>." where it does not follow an ASCII letter, digit or
// underscore.
func refRewrite(name, sql string) string {
	var b strings.Builder
	for i := 0; i < len(sql); {
		if strings.HasPrefix(sql[i:], "pgq.") && (i == 0 || !isWord(sql[i-1])) {
			b.WriteString(name + ".")
			i += len("pgq.")
			continue
		}
		b.WriteByte(sql[i])
		i++
	}
	return b.String()
}

func isWord(c byte) bool {
	return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '_'
}

// FuzzCheckRewrite: a schema name that Check accepts is safe to paste into
// SQL unquoted: it holds no quote, space, semicolon or other symbol, needs
// no quoting as an identifier, keeps "<name>.<channel>" within
// PostgreSQL's 63 bytes, and Rewrite of "pgq.jobs" gives "<name>.jobs".
// For any statement Rewrite agrees with a plain-Go reference.
func FuzzCheckRewrite(f *testing.F) {
	f.Add("tenant_1", "SELECT * FROM pgq.jobs WHERE task = 'pgq.noop'")
	f.Fuzz(func(t *testing.T, name, sql string) {
		if err := Check(name); err != nil {
			if !strings.Contains(err.Error(), "invalid schema name") {
				t.Fatalf("Check(%q): error %v does not say what is wrong", name, err)
			}
			return
		}
		if strings.ContainsAny(name, "\"'`; \t\n\r\x00.-\\$()") || strings.ToLower(name) != name {
			t.Fatalf("Check accepted %q", name)
		}
		for i := 0; i < len(name); i++ {
			if !isWord(name[i]) {
				t.Fatalf("Check accepted %q with byte %q", name, name[i])
			}
		}
		if got := (pgx.Identifier{name}).Sanitize(); got != `"`+name+`"` {
			t.Fatalf("identifier %q sanitizes to %s", name, got)
		}
		if n := len(Channel(name, "control_reply")); n > 63 {
			t.Fatalf("channel of %q is %d bytes", name, n)
		}
		if got := Rewrite(name, "pgq.jobs"); got != name+".jobs" {
			t.Fatalf("Rewrite(%q, pgq.jobs) = %q", name, got)
		}
		want := sql
		if name != Default {
			want = refRewrite(name, sql)
		}
		if got := Rewrite(name, sql); got != want {
			t.Fatalf("Rewrite(%q, %q) = %q, want %q", name, sql, got, want)
		}
	})
}
