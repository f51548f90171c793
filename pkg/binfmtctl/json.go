package binfmtctl

import (
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/qemu-user-static-go/qemu-user-static-go/pkg/lifecycle"
)

// binfmtctl writes its JSON by hand: encoding/json would be the largest
// package in the helper (about 220 kB of its 2.7 MB), which runs in every
// rpm transaction that touches a package using it. The field names are
// those of the json tags in pkg/lifecycle, and they are stable.

// jsonValue is one of: nil, bool, int, string, obj, arr.
type jsonValue any

// obj is a JSON object with its keys in order.
type obj []kv

type kv struct {
	k string
	v jsonValue
}

type arr []jsonValue

// Not inlined: one copy for its many callers keeps binfmtctl small.
//
//go:noinline
func renderJSON(v jsonValue) string {
	var b jsonBuf
	writeJSON(&b, v, 0)
	return b.String()
}

// jsonBuf is a strings.Builder whose writes are calls: inlined, each of
// the writers' hundred-odd writes carried its own copy of the Builder's
// checks. JSON output is not on any hot path.
type jsonBuf struct{ strings.Builder }

// Not inlined: one copy for its many callers keeps binfmtctl small.
//
//go:noinline
func (b *jsonBuf) str(s string) { b.WriteString(s) }

// Not inlined: one copy for its many callers keeps binfmtctl small.
//
//go:noinline
func (b *jsonBuf) byte(c byte) { b.WriteByte(c) }

func writeJSON(b *jsonBuf, v jsonValue, depth int) {
	nl := func(d int) { b.byte('\n'); b.str(strings.Repeat("  ", d)) }
	switch x := v.(type) {
	case nil:
		b.str("null")
	case bool:
		b.str(strconv.FormatBool(x))
	case int:
		b.str(strconv.Itoa(x))
	case string:
		writeJSONString(b, x)
	case obj:
		if len(x) == 0 {
			b.str("{}")
			return
		}
		b.byte('{')
		for i, f := range x {
			if i > 0 {
				b.byte(',')
			}
			nl(depth + 1)
			writeJSONString(b, f.k)
			b.str(": ")
			writeJSON(b, f.v, depth+1)
		}
		nl(depth)
		b.byte('}')
	case arr:
		if len(x) == 0 {
			b.str("[]")
			return
		}
		b.byte('[')
		for i, e := range x {
			if i > 0 {
				b.byte(',')
			}
			nl(depth + 1)
			writeJSON(b, e, depth+1)
		}
		nl(depth)
		b.byte(']')
	default:
		panic("binfmtctl: no JSON form for a value of this type")
	}
}

// writeJSONString quotes s as RFC 8259 requires; invalid UTF-8 becomes
// U+FFFD, as encoding/json does.
func writeJSONString(b *jsonBuf, s string) {
	const hex = "0123456789abcdef"
	b.byte('"')
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			switch {
			case c == '"' || c == '\\':
				b.byte('\\')
				b.byte(c)
			case c == '\n':
				b.str(`\n`)
			case c == '\r':
				b.str(`\r`)
			case c == '\t':
				b.str(`\t`)
			case c < 0x20 || c == '<' || c == '>' || c == '&':
				b.str(`\u00`)
				b.byte(hex[c>>4])
				b.byte(hex[c&0xf])
			default:
				b.byte(c)
			}
			i++
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			b.str(`\ufffd`)
		} else if r == '\u2028' || r == '\u2029' {
			b.str(`\u202`)
			b.byte(hex[r&0xf])
		} else {
			b.str(s[i : i+size])
		}
		i += size
	}
	b.byte('"')
}

func entryJSON(e lifecycle.EntryStatus) obj {
	o := obj{
		{"name", e.Name},
		{"enabled", e.Enabled},
		{"type", e.Type},
		{"interpreter", e.Interpreter},
		{"interpreter_exists", e.InterpreterExists},
		{"stale_pin", e.StalePin},
		{"flags", e.Flags},
		{"offset", e.Offset},
	}
	for _, f := range []kv{{"magic", e.Magic}, {"mask", e.Mask}, {"extension", e.Extension}} {
		if f.v != "" {
			o = append(o, f)
		}
	}
	o = append(o, kv{"interpreter_state", e.InterpreterState()}, kv{"owner", e.Owner})
	if e.ReplacedFrom != "" {
		o = append(o, kv{"replaced_from", e.ReplacedFrom})
	}
	if e.Source != "" {
		o = append(o, kv{"source", e.Source})
	}
	defined := arr{}
	for _, d := range e.DefinedIn {
		defined = append(defined, d)
	}
	o = append(o, kv{"defined_in", defined})
	return append(o, kv{"registered", e.Registered.Format(time.RFC3339Nano)})
}

func reportJSON(r lifecycle.Report) obj {
	entries := arr{}
	for _, e := range r.Entries {
		entries = append(entries, entryJSON(e))
	}
	return obj{{"binfmt_dir", r.BinfmtDir}, {"mounted", r.Mounted}, {"enabled", r.Enabled}, {"entries", entries}}
}

func findingsJSON(fs []lifecycle.Finding) arr {
	out := arr{}
	for _, f := range fs {
		reasons := arr{}
		for _, r := range f.Reasons {
			reasons = append(reasons, r)
		}
		o := obj{{"entry", entryJSON(f.Entry)}, {"action", f.Action}, {"would_remove", f.WouldRemove()}, {"reasons", reasons}, {"removed", f.Removed}}
		if f.Error != "" {
			o = append(o, kv{"error", f.Error})
		}
		out = append(out, o)
	}
	return out
}

func findJSON(file string, e *lifecycle.EntryStatus) obj {
	var entry jsonValue
	if e != nil {
		entry = entryJSON(*e)
	}
	return obj{{"file", file}, {"entry", entry}}
}
