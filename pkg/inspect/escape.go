package inspect

import (
	"fmt"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"
)

// printable returns s with every byte or rune that does not print as
// itself escaped: control characters (ESC, CR, backspace...), invalid
// UTF-8 and Unicode format characters such as the bidirectional
// overrides. A package chooses its scriptlets, names and paths, and a
// terminal obeys what it prints: "\x1b[2K\r" erases the line before it,
// so a `curl ... | sh` line could vanish from the text view. The JSON
// report keeps the exact strings; encoding/json escapes what it must.
//
// Backslashes stay as they are: shell scriptlets are full of them, and
// a literal "\x1b" written out in a script hides nothing.
func printable(s string) string { return escapeText(s, false) }

// printableLine is printable for a line of a scriptlet's body, where a
// tab is indentation and stays.
func printableLine(s string) string { return escapeText(s, true) }

func escapeText(s string, tabs bool) string {
	ok := func(r rune) bool {
		return r == '\t' && tabs || r != utf8.RuneError && unicode.IsPrint(r)
	}
	clean := true
	for _, r := range s {
		if !ok(r) {
			clean = false
			break
		}
	}
	if clean {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); {
		r, n := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && n == 1:
			fmt.Fprintf(&b, `\x%02x`, s[i])
		case ok(r):
			b.WriteString(s[i : i+n])
		case strings.ContainsRune("\a\b\f\n\r\t\v", r):
			// The C escapes: \r, \t...
			b.WriteString(strings.Trim(strconv.QuoteRune(r), "'"))
		case r < 0x80:
			fmt.Fprintf(&b, `\x%02x`, r)
		case r <= 0xffff:
			fmt.Fprintf(&b, `\u%04x`, r)
		default:
			fmt.Fprintf(&b, `\U%08x`, r)
		}
		i += n
	}
	return b.String()
}
