package binfmtctl

import (
	"bytes"
	"strings"
	"testing"
)

func TestCatLines(t *testing.T) {
	for _, tt := range []struct{ in, want string }{
		{"", ""},
		{"a", "a\n"},
		{"a\n", "a\n"},
		{"a\n\n", "a\n\n"},
		{"a\r\nb", "a\nb\n"},
		{"a\rb\r", "a\nb\n"},
		{"a\x00b", "a\nb\n"},
		{"\r\n\r\n", "\n\n"},
		{"a\r\r\nb", "a\n\nb\n"},
	} {
		var b strings.Builder
		catLines(&b, []byte(tt.in))
		if b.String() != tt.want {
			t.Errorf("catLines(%q) = %q, want %q", tt.in, b.String(), tt.want)
		}
	}
}

// FuzzCatLines checks catLines against its definition: the output is
// the input's lines, split at "\n", "\r\n", "\r" or NUL, each ended by
// "\n".
func FuzzCatLines(f *testing.F) {
	f.Add([]byte("# c\r\n:a:E::a::/bin/sh:\n\n"))
	f.Add([]byte("a\rb\x00c"))
	f.Fuzz(func(t *testing.T, in []byte) {
		var b strings.Builder
		catLines(&b, in)
		out := b.String()
		if len(in) == 0 {
			if out != "" {
				t.Fatalf("catLines(%q) = %q, want nothing", in, out)
			}
			return
		}
		norm := bytes.ReplaceAll(in, []byte("\r\n"), []byte("\n"))
		norm = bytes.ReplaceAll(norm, []byte("\r"), []byte("\n"))
		norm = bytes.ReplaceAll(norm, []byte("\x00"), []byte("\n"))
		if !bytes.HasSuffix(norm, []byte("\n")) {
			norm = append(norm, '\n')
		}
		if out != string(norm) {
			t.Fatalf("catLines(%q) = %q, want %q", in, out, norm)
		}
	})
}
