package binfmt_test

import (
	"bytes"
	"errors"
	"io/fs"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/qemu-user-static-go/qemu-user-static-go/pkg/binfmt"
)

// The qemu-aarch64 entry of Fedora's qemu-user-static, pointing at
// Debian's static interpreter.
const (
	aarch64Magic = `\x7fELF\x02\x01\x01\x00\x00\x00\x00\x00\x00\x00\x00\x00\x02\x00\xb7\x00`
	aarch64Mask  = `\xff\xff\xff\xff\xff\xff\xff\x00\xff\xff\xff\xff\xff\xff\xff\xff\xfe\xff\xff\xff`
	aarch64Line  = `:qemu-aarch64:M::` + aarch64Magic + `:` + aarch64Mask + `:/usr/bin/qemu-aarch64-static:F`
)

var (
	aarch64MagicBytes = []byte("\x7fELF\x02\x01\x01\x00\x00\x00\x00\x00\x00\x00\x00\x00\x02\x00\xb7\x00")
	aarch64MaskBytes  = []byte("\xff\xff\xff\xff\xff\xff\xff\x00\xff\xff\xff\xff\xff\xff\xff\xff\xfe\xff\xff\xff")
)

// lineOfLength returns a valid E line of exactly n bytes, padding the
// interpreter path.
func lineOfLength(t testing.TB, n int) string {
	t.Helper()
	head := ":long:E::ext::/"
	tail := ":"
	pad := n - len(head) - len(tail)
	if pad < 1 {
		t.Fatalf("lineOfLength(%d): too short", n)
	}
	return head + strings.Repeat("i", pad) + tail
}

// parseLineTest is one case of TestParseLine. The kernel test
// TestKernelAgreesWithParseLine writes every in to a real register file
// and checks that the kernel accepts exactly the lines ParseLine accepts.
type parseLineTest struct {
	name string
	in   string
	want binfmt.Entry
	// err is a part of the expected error's text; the error must also
	// wrap binfmt.ErrInvalid.
	err string
}

func parseLineTests(t testing.TB) []parseLineTest {
	long1920 := lineOfLength(t, binfmt.MaxRegisterLength)
	return []parseLineTest{
		{
			name: "qemu-aarch64 with F",
			in:   aarch64Line,
			want: binfmt.Entry{Name: "qemu-aarch64", Type: 'M', Magic: aarch64MagicBytes, Mask: aarch64MaskBytes, Interpreter: "/usr/bin/qemu-aarch64-static", Flags: "F"},
		},
		{
			name: "no mask, no flags: trailing empty fields",
			in:   `:python3.11:M::\xa7\x0d\x0d\x0a::/usr/bin/python3.11:`,
			want: binfmt.Entry{Name: "python3.11", Type: 'M', Magic: []byte{0xa7, 0x0d, 0x0d, 0x0a}, Interpreter: "/usr/bin/python3.11"},
		},
		{
			// The kernel splits on the delimiter's byte: one above 0x7f
			// must not be taken for a rune.
			name: "delimiter above 0x7f",
			in:   "\xbchigh\xbcM\xbc\xbcAB\xbc\xbc/bin/sh\xbcP",
			want: binfmt.Entry{Name: "high", Type: 'M', Magic: []byte("AB"), Interpreter: "/bin/sh", Flags: "P"},
		},
		{
			name: "literal magic",
			in:   `:llvm:M::BC::/usr/bin/lli-14:`,
			want: binfmt.Entry{Name: "llvm", Type: 'M', Magic: []byte("BC"), Interpreter: "/usr/bin/lli-14"},
		},
		{
			name: "extension",
			in:   `:py:E::py::/usr/bin/python3:`,
			want: binfmt.Entry{Name: "py", Type: 'E', Magic: []byte("py"), Interpreter: "/usr/bin/python3"},
		},
		{
			// fs/binfmt_misc.c skips the offset and mask fields of an E
			// entry without looking at them.
			name: "extension ignores offset and mask",
			in:   `:e:E:junk:ext:also junk:/bin/sh:P`,
			want: binfmt.Entry{Name: "e", Type: 'E', Magic: []byte("ext"), Interpreter: "/bin/sh", Flags: "P"},
		},
		{
			name: "extension is not unescaped",
			in:   `:e:E::\x41::/bin/sh:`,
			want: binfmt.Entry{Name: "e", Type: 'E', Magic: []byte(`\x41`), Interpreter: "/bin/sh"},
		},
		{
			name: "other delimiter",
			in:   `|pipe|M|2|AB|\xff\x0f|/opt/a:b/interp|P`,
			want: binfmt.Entry{Name: "pipe", Type: 'M', Offset: 2, Magic: []byte("AB"), Mask: []byte{0xff, 0x0f}, Interpreter: "/opt/a:b/interp", Flags: "P"},
		},
		{
			name: "letter as delimiter",
			in:   `qnameqEqqextqq/bin/shq`,
			want: binfmt.Entry{Name: "name", Type: 'E', Magic: []byte("ext"), Interpreter: "/bin/sh"},
		},
		{
			name: "name may hold ':' with another delimiter",
			in:   `,a:b,E,,ext,,/bin/sh,`,
			want: binfmt.Entry{Name: "a:b", Type: 'E', Magic: []byte("ext"), Interpreter: "/bin/sh"},
		},
		{
			name: "escaped delimiter in magic",
			in:   `:colon:M::\x3a\x3A::/bin/sh:`,
			want: binfmt.Entry{Name: "colon", Type: 'M', Magic: []byte("::"), Interpreter: "/bin/sh"},
		},
		{
			name: "upper and mixed case hex",
			in:   `:hex:M::\xAB\xcD\xEf::/bin/sh:`,
			want: binfmt.Entry{Name: "hex", Type: 'M', Magic: []byte{0xab, 0xcd, 0xef}, Interpreter: "/bin/sh"},
		},
		{
			// string_unescape keeps a backslash that does not start \x.
			name: "backslash without x stays",
			in:   `:bs:M::a\nb\::/bin/sh:`,
			want: binfmt.Entry{Name: "bs", Type: 'M', Magic: []byte(`a\nb\`), Interpreter: "/bin/sh"},
		},
		{
			name: "escaped backslash",
			in:   `:bs:M::\x5cx41::/bin/sh:`,
			want: binfmt.Entry{Name: "bs", Type: 'M', Magic: []byte(`\x41`), Interpreter: "/bin/sh"},
		},
		{
			// Verified on Linux 6.18: the kernel reads back magic
			// 5c5c783431. string_unescape copies "\\" as two bytes and
			// the second backslash never starts an escape.
			name: "double backslash before x",
			in:   `:bs:M::\\x41::/bin/sh:`,
			want: binfmt.Entry{Name: "bs", Type: 'M', Magic: []byte(`\\x41`), Interpreter: "/bin/sh"},
		},
		{
			name: "offset with leading zeros",
			in:   `:off:M:007:AB::/bin/sh:`,
			want: binfmt.Entry{Name: "off", Type: 'M', Offset: 7, Magic: []byte("AB"), Interpreter: "/bin/sh"},
		},
		{
			// kstrtoint accepts a leading '+'; verified on Linux 6.18
			// (the entry reads back "offset 5").
			name: "offset with plus sign",
			in:   `:off:M:+5:AB::/bin/sh:`,
			want: binfmt.Entry{Name: "off", Type: 'M', Offset: 5, Magic: []byte("AB"), Interpreter: "/bin/sh"},
		},
		{
			name: "offset minus zero",
			in:   `:off:M:-0:AB::/bin/sh:`,
			want: binfmt.Entry{Name: "off", Type: 'M', Magic: []byte("AB"), Interpreter: "/bin/sh"},
		},
		{
			name: "offset plus magic exactly 256",
			in:   `:edge:M:254:AB::/bin/sh:`,
			want: binfmt.Entry{Name: "edge", Type: 'M', Offset: 254, Magic: []byte("AB"), Interpreter: "/bin/sh"},
		},
		{
			name: "256 bytes of magic",
			in:   `:big:M::` + strings.Repeat(`\x00`, 256) + `::/bin/sh:`,
			want: binfmt.Entry{Name: "big", Type: 'M', Magic: make([]byte, 256), Interpreter: "/bin/sh"},
		},
		{
			name: "C implies O",
			in:   `:c:E::c::/bin/sh:C`,
			want: binfmt.Entry{Name: "c", Type: 'E', Magic: []byte("c"), Interpreter: "/bin/sh", Flags: "OC"},
		},
		{
			name: "flags in kernel order",
			in:   `:c:E::c::/bin/sh:FCP`,
			want: binfmt.Entry{Name: "c", Type: 'E', Magic: []byte("c"), Interpreter: "/bin/sh", Flags: "POCF"},
		},
		{
			name: "repeated flags",
			in:   `:c:E::c::/bin/sh:FFOO`,
			want: binfmt.Entry{Name: "c", Type: 'E', Magic: []byte("c"), Interpreter: "/bin/sh", Flags: "OF"},
		},
		{
			// create_entry skips one '\n' after the flags.
			name: "one trailing newline",
			in:   ":nl:E::nl::/bin/sh:F\n",
			want: binfmt.Entry{Name: "nl", Type: 'E', Magic: []byte("nl"), Interpreter: "/bin/sh", Flags: "F"},
		},
		{
			name: "shortest line",
			in:   ":a:E::x::/:",
			want: binfmt.Entry{Name: "a", Type: 'E', Magic: []byte("x"), Interpreter: "/"},
		},
		{
			name: "255 byte name",
			in:   ":" + strings.Repeat("n", 255) + ":E::x::/bin/sh:",
			want: binfmt.Entry{Name: strings.Repeat("n", 255), Type: 'E', Magic: []byte("x"), Interpreter: "/bin/sh"},
		},
		{
			name: "longest line",
			in:   long1920,
			want: binfmt.Entry{Name: "long", Type: 'E', Magic: []byte("ext"), Interpreter: long1920[len(":long:E::ext::") : len(long1920)-1]},
		},

		// Bad input.
		{name: "empty", in: "", err: "at least 11"},
		{name: "too short", in: ":a:E::x::/", err: "line is 10 bytes, the kernel needs at least 11"},
		{name: "too long", in: lineOfLength(t, binfmt.MaxRegisterLength+1), err: "line is 1921 bytes, the kernel accepts at most 1920"},
		{name: "missing delimiter after interpreter", in: ":qemu:M::AB::/bin/sh", err: "want 7"},
		{name: "too few fields", in: ":qemu:M::AB:/bin/sh:", err: "want 7"},
		{name: "delimiter in flags", in: ":qemu:M::AB::/bin/sh:F:", err: "flags field"},
		// The kernel refuses a flag letter as the delimiter (EINVAL on
		// 6.18), whatever the flags field holds.
		{name: "delimiter P", in: "PnamePEPPextPP/bin/shP", err: `delimiter 'P' is a flag letter`},
		{name: "delimiter O", in: "OnameOEOOextOO/bin/shO", err: `delimiter 'O' is a flag letter`},
		{name: "delimiter C", in: "CnameCECCextCC/bin/shC", err: `delimiter 'C' is a flag letter`},
		{name: "delimiter F", in: "FnameFMFFABFF/bin/shF", err: `delimiter 'F' is a flag letter`},
		{name: "delimiter F with flags", in: "FnameFMFFABFF/bin/shFP", err: `delimiter 'F' is a flag letter`},
		{name: "empty name", in: "::M::AB::/bin/sh:", err: "name is empty"},
		{name: "name dot", in: ":.:M::AB::/bin/sh:", err: `name "." is not allowed`},
		{name: "name dot dot", in: ":..:M::AB::/bin/sh:", err: `name ".." is not allowed`},
		{name: "name with slash", in: ":a/b:M::AB::/bin/sh:", err: `name "a/b" contains '/'`},
		{name: "name register", in: ":register:M::AB::/bin/sh:", err: "control file"},
		{name: "name status", in: ":status:M::AB::/bin/sh:", err: "control file"},
		{
			// lookup_one_len refuses it with ENAMETOOLONG, and systemd's
			// filename_is_valid with "not valid".
			name: "name longer than NAME_MAX", in: ":" + strings.Repeat("n", 256) + ":E::x::/bin/sh:", err: "name",
		},
		{name: "unknown type", in: ":t:X::AB::/bin/sh:", err: `type "X"`},
		{name: "lowercase type", in: ":t:m::AB::/bin/sh:", err: `type "m"`},
		{name: "long type", in: ":t:MM::AB::/bin/sh:", err: `type "MM"`},
		{name: "empty type", in: ":t:::AB::/bin/sh:", err: `type ""`},
		{name: "negative offset", in: ":t:M:-1:AB::/bin/sh:", err: `offset "-1"`},
		{name: "hex offset", in: ":t:M:0x10:AB::/bin/sh:", err: `offset "0x10"`},
		{name: "offset with space", in: ":t:M: 1:AB::/bin/sh:", err: `offset " 1"`},
		{name: "offset with two plus signs", in: ":t:M:++5:AB::/bin/sh:", err: `offset "++5"`},
		{name: "offset with plus minus", in: ":t:M:+-5:AB::/bin/sh:", err: `offset "+-5"`},
		{name: "offset with minus plus", in: ":t:M:-+0:AB::/bin/sh:", err: `offset "-+0"`},
		{name: "offset with newline", in: ":t:M:5\n:AB::/bin/sh:", err: "offset"},
		{name: "huge offset", in: ":t:M:99999999999999999999:AB::/bin/sh:", err: "offset"},
		{name: "offset plus magic over 256", in: ":t:M:255:AB::/bin/sh:", err: "offset 255 plus magic length 2 is over 256"},
		{name: "magic over 256", in: ":t:M::" + strings.Repeat("A", 257) + "::/bin/sh:", err: "over 256"},
		{name: "empty magic", in: ":t:M::::/bin/sh:", err: "magic is empty"},
		{name: "mask longer than magic", in: `:t:M::AB:\xff\xff\xff:/bin/sh:`, err: "magic and mask differ in length (2 vs 3 bytes)"},
		{name: "mask shorter than magic", in: `:t:M::ABC:\xff:/bin/sh:`, err: "magic and mask differ in length (3 vs 1 bytes)"},
		{name: "one hex digit", in: `:t:M::\x4::/bin/sh:`, err: "two hex digits"},
		{name: "one hex digit then text", in: `:t:M::\x4g::/bin/sh:`, err: "two hex digits"},
		{name: "non-hex escape", in: `:t:M::\xzz::/bin/sh:`, err: "two hex digits"},
		{name: "bare \\x at the end", in: `:t:M::AB\x::/bin/sh:`, err: "two hex digits"},
		{name: "bad escape in mask", in: `:t:M::AB:\xff\xf:/bin/sh:`, err: "mask"},
		{name: "empty extension", in: ":t:E::::/bin/sh:", err: "extension is empty"},
		{name: "extension with slash", in: ":t:E::a/b::/bin/sh:", err: `extension "a/b" contains '/'`},
		{name: "empty interpreter", in: ":tt:E::x:::", err: "interpreter is empty"},
		{name: "relative interpreter", in: ":t:E::x::bin/sh:", err: `interpreter "bin/sh" is not an absolute path`},
		// The kernel accepts these, but its entry file, one field a line,
		// could not be read back.
		{name: "newline in interpreter", in: ":t:E::x::/bin/s\nh:", err: "newline"},
		{name: "newline in extension", in: ":t:E::a\nb::/bin/sh:", err: "newline"},
		// The kernel refuses a NUL in most fields and truncates the magic
		// at one; only as the delimiter does a NUL work.
		{name: "NUL in magic", in: ":t:M::a\x00b::/bin/sh:", err: "NUL"},
		{name: "NUL in interpreter", in: ":t:E::x::/bin/sh\x00x:", err: "NUL"},
		{name: "NUL in name", in: ":t\x00:E::x::/bin/sh:", err: "NUL"},
		{
			name: "NUL delimiter",
			in:   "\x00nul\x00E\x00\x00x\x00\x00/bin/sh\x00",
			want: binfmt.Entry{Name: "nul", Type: 'E', Magic: []byte("x"), Interpreter: "/bin/sh"},
		},
		{name: "unknown flag", in: ":t:E::x::/bin/sh:X", err: `unknown flag 'X' in "X"`},
		{name: "lowercase flag", in: ":t:E::x::/bin/sh:f", err: `unknown flag 'f'`},
		{name: "flag with space", in: ":t:E::x::/bin/sh:F ", err: "unknown flag ' '"},
		{name: "two trailing newlines", in: ":t:E::x::/bin/sh:F\n\n", err: "unknown flag"},
	}
}

func TestParseLine(t *testing.T) {
	for _, tt := range parseLineTests(t) {
		t.Run(tt.name, func(t *testing.T) {
			got, err := binfmt.ParseLine(tt.in)
			if tt.err != "" {
				if err == nil {
					t.Fatalf("ParseLine(%q) = %+v, want an error containing %q", tt.in, got, tt.err)
				}
				if !errors.Is(err, binfmt.ErrInvalid) {
					t.Errorf("ParseLine(%q) error %q does not wrap ErrInvalid", tt.in, err)
				}
				if !strings.Contains(err.Error(), tt.err) {
					t.Errorf("ParseLine(%q) error %q, want it to contain %q", tt.in, err, tt.err)
				}
				if strings.Contains(err.Error(), "\n") {
					t.Errorf("ParseLine(%q) error %q is more than one line", tt.in, err)
				}
				return
			}
			if err != nil {
				t.Fatalf("ParseLine(%q): %v", tt.in, err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("ParseLine(%q)\n got %+v\nwant %+v", tt.in, got, tt.want)
			}
		})
	}
}

func TestNormalizeFlags(t *testing.T) {
	for in, want := range map[string]string{
		"": "", "P": "P", "O": "O", "C": "OC", "F": "F",
		"CF": "OCF", "FC": "OCF", "OC": "OC", "FOCP": "POCF", "PPP": "P",
	} {
		got, err := binfmt.NormalizeFlags(in)
		if err != nil || got != want {
			t.Errorf("NormalizeFlags(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	for _, in := range []string{"X", "p", "F\n", "PX", " "} {
		if got, err := binfmt.NormalizeFlags(in); !errors.Is(err, binfmt.ErrInvalid) {
			t.Errorf("NormalizeFlags(%q) = %q, %v; want an error wrapping ErrInvalid", in, got, err)
		}
	}
}

func TestValidName(t *testing.T) {
	for _, ok := range []string{"qemu-aarch64", "a", "...", ".a", "a b", "a:b", strings.Repeat("x", 255)} {
		if err := binfmt.ValidName(ok); err != nil {
			t.Errorf("ValidName(%q) = %v, want nil", ok, err)
		}
	}
	for _, bad := range []string{"", ".", "..", "a/b", "/", "register", "status", "a\nb", "a\x00b", strings.Repeat("x", 256)} {
		if err := binfmt.ValidName(bad); !errors.Is(err, binfmt.ErrInvalid) {
			t.Errorf("ValidName(%q) = %v, want an error wrapping ErrInvalid", bad, err)
		}
	}
}

func TestParse(t *testing.T) {
	in := strings.Join([]string{
		"# a comment",
		"; another comment",
		"",
		"   ",
		"\t:spaces:E::sp::/bin/sh:\t  ",
		"  # an indented comment",
		":bad:M::AB:\\xff:/bin/sh:",
		":crlf:E::crlf::/bin/sh:F\r",
		"|pipe|M|1|\\x7fELF||/bin/sh|",
		"#:commented:E::c::/bin/sh:",
		":unknownflag:E::u::/bin/sh:Z",
		":last:E::last::/bin/sh:", // no newline at the end
	}, "\n")
	lines, errs := binfmt.Parse(strings.NewReader(in), "/etc/binfmt.d/test.conf")

	type got struct {
		name string
		num  int
		raw  string
	}
	var gotLines []got
	for _, l := range lines {
		if l.File != "/etc/binfmt.d/test.conf" {
			t.Errorf("line %d: File = %q", l.Num, l.File)
		}
		if l.String() != "/etc/binfmt.d/test.conf:"+itoa(l.Num) {
			t.Errorf("Line.String() = %q", l.String())
		}
		gotLines = append(gotLines, got{l.Name, l.Num, l.Raw})
	}
	wantLines := []got{
		{"spaces", 5, ":spaces:E::sp::/bin/sh:"},
		{"crlf", 8, ":crlf:E::crlf::/bin/sh:F"},
		{"pipe", 9, "|pipe|M|1|\\x7fELF||/bin/sh|"},
		{"last", 12, ":last:E::last::/bin/sh:"},
	}
	if !reflect.DeepEqual(gotLines, wantLines) {
		t.Errorf("Parse lines\n got %+v\nwant %+v", gotLines, wantLines)
	}

	wantErrs := []struct {
		num  int
		text string
	}{
		{7, "/etc/binfmt.d/test.conf:7: invalid entry: magic and mask differ in length (2 vs 1 bytes)"},
		{11, "/etc/binfmt.d/test.conf:11: invalid entry: unknown flag 'Z'"},
	}
	if len(errs) != len(wantErrs) {
		t.Fatalf("Parse errors = %q, want %d", errs, len(wantErrs))
	}
	for i, err := range errs {
		var le *binfmt.LineError
		if !errors.As(err, &le) || le.File != "/etc/binfmt.d/test.conf" || le.Num != wantErrs[i].num {
			t.Errorf("error %d = %#v, want a *LineError for line %d", i, err, wantErrs[i].num)
		}
		if !errors.Is(err, binfmt.ErrInvalid) {
			t.Errorf("error %q does not wrap ErrInvalid", err)
		}
		if !strings.HasPrefix(err.Error(), wantErrs[i].text) {
			t.Errorf("error %d = %q, want it to start with %q", i, err, wantErrs[i].text)
		}
	}
}

func TestParseWithoutFileName(t *testing.T) {
	_, errs := binfmt.Parse(strings.NewReader("\n:x:Q::a::/b:\n"), "")
	if len(errs) != 1 || !strings.HasPrefix(errs[0].Error(), "line 2: ") {
		t.Fatalf("Parse errors = %q, want one starting with %q", errs, "line 2: ")
	}
}

// TestParseTrimsLikeSystemd checks that Parse trims exactly what
// systemd-binfmt's strstrip trims: WHITESPACE, which is " \t\n\r". A
// vertical tab or form feed stays part of the line. Verified with systemd
// 252: "\v:vt:E::vt::/bin/sh:" is refused ("Rule name ':vt:E::vt::/bin/sh:'
// is not valid", since \v becomes the delimiter) and
// ":ff:E::ff::/bin/sh:\f" fails in the kernel (the flags field is "\f").
func TestParseTrimsLikeSystemd(t *testing.T) {
	for _, in := range []string{
		"\v:vt:E::vt::/bin/sh:",
		":ff:E::ff::/bin/sh:\f",
		":vt2:E::vt::/bin/sh:\v",
	} {
		lines, errs := binfmt.Parse(strings.NewReader(in+"\n"), "ws.conf")
		if len(lines) != 0 || len(errs) != 1 {
			t.Errorf("Parse(%q) = %d lines, errors %q; want the line refused, as systemd-binfmt refuses it", in, len(lines), errs)
		}
	}
	lines, errs := binfmt.Parse(strings.NewReader(" \t:ok:E::ok::/bin/sh:\r\t \n"), "ws.conf")
	if len(lines) != 1 || len(errs) != 0 || lines[0].Raw != ":ok:E::ok::/bin/sh:" {
		t.Errorf("Parse of a line with spaces, tabs and CR around it = %+v, %q", lines, errs)
	}
}

// TestParseLineLengthLikeSystemd checks the longest binfmt.d line.
// systemd-binfmt writes each line with a newline appended (write_string_file
// without WRITE_STRING_FILE_AVOID_NEWLINE), and the kernel counts that
// newline against MAX_REGISTER_LENGTH. Verified with systemd 252: a
// 1919-byte line registers, a 1920-byte line fails with EINVAL.
func TestParseLineLengthLikeSystemd(t *testing.T) {
	ok := lineOfLength(t, binfmt.MaxRegisterLength-1)
	if lines, errs := binfmt.Parse(strings.NewReader(ok+"\n"), "len.conf"); len(lines) != 1 || len(errs) != 0 {
		t.Errorf("Parse of a %d-byte line: %d lines, errors %q; want it accepted", len(ok), len(lines), errs)
	}
	tooLong := lineOfLength(t, binfmt.MaxRegisterLength)
	lines, errs := binfmt.Parse(strings.NewReader(tooLong+"\n"), "len.conf")
	if len(lines) != 0 || len(errs) != 1 || !errors.Is(errs[0], binfmt.ErrInvalid) {
		t.Errorf("Parse of a %d-byte line: %d lines, errors %q; want it refused as systemd-binfmt's register write fails", len(tooLong), len(lines), errs)
	}
}

func TestParseFile(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "x.conf")
	writeFile(t, p, aarch64Line+"\n:bad:E::x::rel:\n")
	lines, errs := binfmt.ParseFile(p)
	if len(lines) != 1 || lines[0].Name != "qemu-aarch64" || lines[0].File != p || lines[0].Num != 1 {
		t.Errorf("ParseFile lines = %+v", lines)
	}
	if len(errs) != 1 || !strings.HasPrefix(errs[0].Error(), p+":2: ") {
		t.Errorf("ParseFile errors = %q, want one naming %s:2", errs, p)
	}

	missing := filepath.Join(dir, "missing.conf")
	_, errs = binfmt.ParseFile(missing)
	if len(errs) != 1 || !errors.Is(errs[0], fs.ErrNotExist) || !strings.Contains(errs[0].Error(), missing) {
		t.Errorf("ParseFile(missing) errors = %q, want one wrapping fs.ErrNotExist naming %q", errs, missing)
	}
}

// TestRegisterStringRoundTrip checks that RegisterString renders a string
// ParseLine reads back as the same entry, for entries whose names and
// paths use the usual delimiters.
func TestRegisterStringRoundTrip(t *testing.T) {
	entries := []binfmt.Entry{
		{Name: "qemu-aarch64", Type: 'M', Magic: aarch64MagicBytes, Mask: aarch64MaskBytes, Interpreter: "/usr/bin/qemu-aarch64-static", Flags: "F"},
		{Name: "colon:name", Type: 'M', Offset: 3, Magic: []byte(":|\\ x"), Interpreter: "/bin/sh", Flags: "POCF"},
		{Name: "ext", Type: 'E', Magic: []byte("a:b"), Interpreter: "/opt/x|y/interp"},
		{Name: "spaces", Type: 'M', Magic: []byte("  \t\n"), Mask: []byte{0, 0xff, 0x20, 0x0a}, Interpreter: "/bin/sh"},
		// Every delimiter RegisterString prefers is taken by the name.
		{Name: ":|,!%@~^+=", Type: 'E', Magic: []byte("x"), Interpreter: "/bin/sh"},
		{Name: "a", Type: 'M', Magic: []byte(":|,!%@~^+="), Interpreter: "/:|,!%@~^+="},
	}
	for _, e := range entries {
		s := e.RegisterString()
		got, err := binfmt.ParseLine(s)
		if err != nil {
			t.Errorf("ParseLine(RegisterString of %+v = %q): %v", e, s, err)
			continue
		}
		if !reflect.DeepEqual(got, e) {
			t.Errorf("round trip through %q\n got %+v\nwant %+v", s, got, e)
		}
	}
}

func TestRegisterStringEscapes(t *testing.T) {
	e := binfmt.Entry{Name: "n", Type: 'M', Magic: []byte("A\\:\x00\x7f\xff "), Interpreter: "/bin/sh"}
	if got, want := e.RegisterString(), `:n:M:0:A\x5c\x3a\x00\x7f\xff\x20::/bin/sh:`; got != want {
		t.Errorf("RegisterString = %q, want %q", got, want)
	}
	if s := e.RegisterString(); bytes.ContainsAny([]byte(s), "\n\x00") {
		t.Errorf("RegisterString = %q holds a raw newline or NUL", s)
	}
}
