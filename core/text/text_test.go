package text_test

import (
	"strings"
	"testing"
	"unicode"
	"unicode/utf8"

	"github.com/gpuaas/gpuaas/core/fault"
	"github.com/gpuaas/gpuaas/core/text"
)

func TestLine(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name, in string
		min, max int
		ok       bool
	}{
		{"plain", "my laptop", 1, 100, true},
		{"unicode letters and emoji", "Zoë's 🚀 ключ", 1, 100, true},
		{"exactly max code points", strings.Repeat("é", 100), 1, 100, true},
		{"one over max", strings.Repeat("é", 101), 1, 100, false},
		{"empty when required", "", 1, 100, false},
		{"empty when optional", "", 0, 100, true},
		{"under a minimum of three", "ab", 3, 3, false},
		{"no upper bound", strings.Repeat("a", 10000), 0, 0, true},
		{"NUL", "a\x00b", 0, 0, false},
		{"escape", "a\x1b[31mred", 0, 0, false},
		{"bell", "ding\a", 0, 0, false},
		{"tab", "a\tb", 0, 0, false},
		{"newline", "a\nb", 0, 0, false},
		{"DEL", "a\x7fb", 0, 0, false},
		{"C1 control (U+0085)", "a\u0085b", 0, 0, false},
		{"C1 control (U+009B CSI)", "a\u009bb", 0, 0, false},
		{"right-to-left override", "evil\u202Etxt.exe", 0, 0, false},
		{"left-to-right isolate", "a\u2066b", 0, 0, false},
		{"right-to-left mark", "a\u200fb", 0, 0, false},
		{"arabic letter mark", "a\u061cb", 0, 0, false},
		{"line separator", "a\u2028b", 0, 0, false},
		{"invalid UTF-8", "a\xffb", 0, 0, false},
		{"truncated UTF-8", "a\xc3", 0, 0, false},
		{"a real U+FFFD is text", "a\uFFFDb", 0, 0, true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			err := text.Line("name", c.in, c.min, c.max)
			if (err == nil) != c.ok {
				t.Fatalf("Line(%q, %d, %d) = %v, want ok=%v", c.in, c.min, c.max, err, c.ok)
			}
			if err != nil {
				fe := fault.From(err)
				if fe.Kind != fault.KindInvalid || fe.Code != fault.CodeValidationFailed || fe.Field != "name" {
					t.Fatalf("error = %+v, want invalid/validation_failed on field name", fe)
				}
				if strings.Contains(fe.Message, c.in) && c.in != "" {
					t.Fatalf("message %q quotes the value", fe.Message)
				}
			}
		})
	}
}

func TestOpaque(t *testing.T) {
	t.Parallel()
	if err := text.Opaque("password", "tab\there\x1b", 100); err != nil {
		t.Fatalf("controls in a password: %v", err)
	}
	for _, bad := range []string{"a\x00b", "a\xffb", strings.Repeat("x", 101)} {
		if err := text.Opaque("password", bad, 100); !fault.IsKind(err, fault.KindInvalid) {
			t.Fatalf("Opaque(%q) = %v, want invalid", bad, err)
		}
	}
}

// oracle is the policy written a second way, from the unicode package's
// own tables, so the fuzzer compares two implementations.
func oracle(s string, min, max int) bool {
	if !utf8.ValidString(s) {
		return false
	}
	for _, r := range s {
		if unicode.IsControl(r) || unicode.Is(unicode.Bidi_Control, r) || r == '\u2028' || r == '\u2029' {
			return false
		}
	}
	n := utf8.RuneCountInString(s)
	return n >= min && (max == 0 || n <= max)
}

func FuzzLine(f *testing.F) {
	for _, s := range []string{"", "ok", "a\x00", "\u202e", "\xff", "é", "\u0085", "x\u2069y", "\t", "\uFFFD"} {
		f.Add(s, 0, 8)
	}
	f.Fuzz(func(t *testing.T, s string, min, max int) {
		min, max = min&0xff, max&0xff
		err := text.Line("f", s, min, max)
		if want := oracle(s, min, max); (err == nil) != want {
			t.Fatalf("Line(%q, %d, %d) = %v, oracle says ok=%v", s, min, max, err, want)
		}
		if err != nil && !fault.IsKind(err, fault.KindInvalid) {
			t.Fatalf("Line(%q) error of kind %s", s, fault.KindOf(err))
		}
	})
}

func TestClean(t *testing.T) {
	t.Parallel()
	cases := []struct {
		in   string
		max  int
		want string
	}{
		{"Zoë", 0, "Zoë"},
		{"evil\u202Egnp.exe", 0, "evilgnp.exe"},
		{"a\x00b\x1b[31mc\td\ne", 0, "ab[31mcde"},
		{"bad\xffbytes", 0, "badbytes"},
		{strings.Repeat("é", 10), 4, "éééé"},
	}
	for _, c := range cases {
		got := text.Clean(c.in, c.max)
		if got != c.want {
			t.Errorf("Clean(%q, %d) = %q, want %q", c.in, c.max, got, c.want)
		}
		if err := text.Line("f", got, 0, 0); err != nil {
			t.Errorf("Clean(%q) is not single-line text: %v", c.in, err)
		}
	}
}
