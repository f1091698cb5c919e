package text

import (
	"fmt"
	"strings"
	"unicode/utf8"

	"github.com/gpuaas/gpuaas/core/fault"
)

// Line checks single-line text: valid UTF-8, no NUL, no C0 or C1 control
// characters (tab, newline and DEL included), no line or paragraph
// separators, no bidirectional controls (which let text display in another
// order than it is stored, e.g. U+202E), and between min and max
// characters (Unicode code points, as JSON Schema's minLength and maxLength
// count them; max 0 means no upper bound). The error is validation_failed
// naming field; it never quotes the value.
func Line(field, s string, min, max int) error {
	if err := check(field, s, true); err != nil {
		return err
	}
	return length(field, s, min, max)
}

// Opaque checks text the platform passes on without showing it (passwords):
// valid UTF-8 and no NUL (which no store or protocol it reaches accepts),
// and at most max characters (0: no bound). Control characters are allowed:
// a password is the user's to choose.
func Opaque(field, s string, max int) error {
	if err := check(field, s, false); err != nil {
		return err
	}
	return length(field, s, 0, max)
}

// Clean makes s single-line text for text that comes from elsewhere and is
// kept rather than refused (a name from the identity provider): invalid
// UTF-8 and every character Line refuses are dropped, and the result is cut
// to max characters (0: no bound).
func Clean(s string, max int) string {
	var b strings.Builder
	n := 0
	for _, r := range strings.ToValidUTF8(s, "") {
		if Refused(r) != "" {
			continue
		}
		if max > 0 && n == max {
			break
		}
		b.WriteRune(r)
		n++
	}
	return b.String()
}

// Refused reports why r is not allowed in single-line text ("" when it is).
func Refused(r rune) string {
	switch {
	case r == 0:
		return "NUL"
	case r < 0x20, r == 0x7f, r >= 0x80 && r <= 0x9f:
		return "control characters"
	case r == 0x2028, r == 0x2029:
		return "line separators"
	case isBidiControl(r):
		return "bidirectional control characters"
	}
	return ""
}

// isBidiControl reports the Unicode bidirectional formatting characters
// (Bidi_Control): ALM, LRM, RLM, the embeddings and overrides
// U+202A..U+202E and the isolates U+2066..U+2069.
func isBidiControl(r rune) bool {
	return r == 0x061c || r == 0x200e || r == 0x200f || (r >= 0x202a && r <= 0x202e) || (r >= 0x2066 && r <= 0x2069)
}

func check(field, s string, line bool) error {
	for i, r := range s {
		if r == utf8.RuneError {
			if _, size := utf8.DecodeRuneInString(s[i:]); size == 1 {
				return fault.Invalid(field, field+" must be valid UTF-8")
			}
		}
		if r == 0 {
			return fault.Invalid(field, field+" must not contain NUL")
		}
		if line {
			if why := Refused(r); why != "" {
				return fault.Invalid(field, field+" must not contain "+why)
			}
		}
	}
	return nil
}

func length(field, s string, min, max int) error {
	n := utf8.RuneCountInString(s)
	switch {
	case n < min && min == 1:
		return fault.Invalid(field, field+" must not be empty")
	case n < min:
		return fault.Invalid(field, fmt.Sprintf("%s must be at least %d characters", field, min))
	case max > 0 && n > max:
		return fault.Invalid(field, fmt.Sprintf("%s must be at most %d characters", field, max))
	}
	return nil
}
