package binfmt_test

import (
	"errors"
	"reflect"
	"strings"
	"testing"

	"github.com/qemu-user-static-go/qemu-user-static-go/pkg/binfmt"
)

// parseLineSeeds are register strings that reach every branch of
// ParseLine. More seeds live in testdata/fuzz/FuzzParseLine.
var parseLineSeeds = []string{
	aarch64Line,
	`:python3.11:M::\xa7\x0d\x0d\x0a::/usr/bin/python3.11:`,
	`:jar:E::jar::/usr/bin/jexec:`,
	`|pipe|M|2|AB|\xff\x0f|/opt/a:b/interp|F`,
	`,a:b,E,,ext,,/bin/sh,CF`,
	`:bs:M::a\nb\\x41\x5c::/bin/sh:`,
	`:off:M:254:AB::/bin/sh:POCF`,
	":nl:E::nl::/bin/sh:F\n",
	`:t:M::AB:\xff\xff\xff:/bin/sh:`,
	`:t:M::\x4g::/bin/sh:`,
	`:a:E::x::/`,
	`:register:E::x::/bin/sh:`,
	`:e:E:junk:ext:junk:/bin/sh:`,
	"\x00a\x00E\x00\x00x\x00\x00/\x00",
}

// FuzzParseLine checks that ParseLine never panics, that its errors wrap
// ErrInvalid, and that an accepted line survives RegisterString: parsing
// the rendering gives the same Entry.
func FuzzParseLine(f *testing.F) {
	for _, s := range parseLineSeeds {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		e, err := binfmt.ParseLine(s)
		if err != nil {
			if !errors.Is(err, binfmt.ErrInvalid) {
				t.Fatalf("ParseLine(%q) error %q does not wrap ErrInvalid", s, err)
			}
			return
		}
		if e.Type != binfmt.TypeMagic && e.Type != binfmt.TypeExtension {
			t.Fatalf("ParseLine(%q) type %q", s, e.Type)
		}
		if e.Mask != nil && len(e.Mask) != len(e.Magic) {
			t.Fatalf("ParseLine(%q) magic %d bytes, mask %d", s, len(e.Magic), len(e.Mask))
		}
		if e.Offset+len(e.Magic) > 256 && e.Type == binfmt.TypeMagic {
			t.Fatalf("ParseLine(%q) offset %d plus magic %d is over 256", s, e.Offset, len(e.Magic))
		}
		r := e.RegisterString()
		back, err := binfmt.ParseLine(r)
		if err != nil {
			t.Fatalf("ParseLine(%q) = %+v renders as %q, which does not parse: %v", s, e, r, err)
		}
		if !reflect.DeepEqual(back, e) {
			t.Fatalf("round trip of %q through %q\n got %+v\nwant %+v", s, r, back, e)
		}
		if r2 := back.RegisterString(); r2 != r {
			t.Fatalf("rendering is not stable: %q then %q", r, r2)
		}
	})
}

// FuzzParseLive checks that ParseLive never panics on any entry file,
// and that the entry file Status renders for a parsed line reads back as
// the same definition.
func FuzzParseLive(f *testing.F) {
	for _, s := range parseLineSeeds {
		f.Add([]byte(s), s)
	}
	f.Add([]byte("enabled\ninterpreter /bin/sh\nflags: \nextension .jar\n"), "")
	f.Add([]byte("disabled\ninterpreter /usr/bin/qemu-aarch64-static\nflags: OCF\noffset 0\nmagic 7f454c46\nmask ffffffff\n"), "")
	f.Add([]byte("enabled\ninterpreter /x\nflags:\noffset 12\nmagic 00\n"), "")
	f.Add([]byte("enabled\n"), "")
	f.Fuzz(func(t *testing.T, data []byte, line string) {
		if l, err := binfmt.ParseLive("fuzz", data); err != nil {
			if !errors.Is(err, binfmt.ErrInvalid) {
				t.Fatalf("ParseLive(%q) error %q does not wrap ErrInvalid", data, err)
			}
		} else if l.Name != "fuzz" {
			t.Fatalf("ParseLive(%q) name %q", data, l.Name)
		}

		e, err := binfmt.ParseLine(line)
		if err != nil {
			return
		}
		status := e.Status()
		l, err := binfmt.ParseLive(e.Name, []byte(status))
		if err != nil {
			t.Fatalf("ParseLine(%q) = %+v, whose entry file %q does not parse: %v", line, e, status, err)
		}
		if !l.Enabled || !l.Matches(e) {
			t.Fatalf("ParseLine(%q) = %+v, whose entry file %q parses as %+v", line, e, status, l)
		}
	})
}

// FuzzParse checks Parse on whole binfmt.d files: it never panics, every
// line it accepts is the trimmed text of the line it names and parses
// alone to the same entry, every error names a line, and the lines and
// errors cover each non-comment line once.
func FuzzParse(f *testing.F) {
	f.Add(aarch64Line + "\n")
	f.Add("# comment\n; other\n\n  " + aarch64Line + " \r\n:bad:Q::x::/b:\n:a:E::x::/b:")
	f.Add(" \t:ok:E::ok::/bin/sh:\r\t \n\x0b:vt:E::x::/b:\n")
	f.Fuzz(func(t *testing.T, text string) {
		lines, errs := binfmt.Parse(strings.NewReader(text), "f.conf")
		raw := strings.Split(text, "\n")
		want := 0
		for _, l := range raw {
			s := strings.Trim(l, " \t\n\r")
			if s != "" && s[0] != '#' && s[0] != ';' {
				want++
			}
		}
		if len(lines)+len(errs) != want {
			t.Fatalf("Parse(%q): %d lines and %d errors, want %d in all", text, len(lines), len(errs), want)
		}
		for _, l := range lines {
			if l.Num < 1 || l.Num > len(raw) {
				t.Fatalf("Parse(%q): line number %d out of range", text, l.Num)
			}
			if s := strings.Trim(raw[l.Num-1], " \t\n\r"); l.Raw != s {
				t.Fatalf("Parse(%q): line %d is %q, want %q", text, l.Num, l.Raw, s)
			}
			e, err := binfmt.ParseLine(l.Raw)
			if err != nil || !reflect.DeepEqual(e, l.Entry) {
				t.Fatalf("Parse(%q): line %d parsed to %+v, alone to %+v, %v", text, l.Num, l.Entry, e, err)
			}
		}
		for _, err := range errs {
			var le *binfmt.LineError
			if !errors.As(err, &le) || le.File != "f.conf" || le.Num < 1 || le.Num > len(raw) {
				t.Fatalf("Parse(%q): error %v does not name a line of f.conf", text, err)
			}
		}
	})
}
