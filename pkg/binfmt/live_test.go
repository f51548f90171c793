package binfmt_test

import (
	"errors"
	"reflect"
	"strings"
	"testing"

	"github.com/qemu-user-static-go/qemu-user-static-go/pkg/binfmt"
)

func TestParseLive(t *testing.T) {
	tests := []struct {
		name string
		data string
		want binfmt.Live
		err  string
	}{
		{
			name: "magic and mask",
			data: "enabled\ninterpreter /usr/bin/qemu-aarch64-static\nflags: F\noffset 0\nmagic 7f454c460201010000000000000000000200b700\nmask ffffffffffffff00fffffffffffffffffeffffff\n",
			want: binfmt.Live{Enabled: true, Entry: binfmt.Entry{Name: "n", Type: 'M', Magic: aarch64MagicBytes, Mask: aarch64MaskBytes, Interpreter: "/usr/bin/qemu-aarch64-static", Flags: "F"}},
		},
		{
			name: "no mask, disabled, no flags",
			data: "disabled\ninterpreter /usr/bin/python3.11\nflags: \noffset 12\nmagic a70d0d0a\n",
			want: binfmt.Live{Entry: binfmt.Entry{Name: "n", Type: 'M', Offset: 12, Magic: []byte{0xa7, 0x0d, 0x0d, 0x0a}, Interpreter: "/usr/bin/python3.11"}},
		},
		{
			name: "extension",
			data: "enabled\ninterpreter /usr/bin/jexec\nflags: POC\nextension .jar\n",
			want: binfmt.Live{Enabled: true, Entry: binfmt.Entry{Name: "n", Type: 'E', Magic: []byte("jar"), Interpreter: "/usr/bin/jexec", Flags: "POC"}},
		},
		{
			name: "extension with dots",
			data: "enabled\ninterpreter /x\nflags: \nextension .tar.gz\n",
			want: binfmt.Live{Enabled: true, Entry: binfmt.Entry{Name: "n", Type: 'E', Magic: []byte("tar.gz"), Interpreter: "/x"}},
		},
		{
			name: "flags without the trailing space",
			data: "enabled\ninterpreter /x\nflags:\nextension .a\n",
			want: binfmt.Live{Enabled: true, Entry: binfmt.Entry{Name: "n", Type: 'E', Magic: []byte("a"), Interpreter: "/x"}},
		},
		{
			name: "interpreter with spaces",
			data: "enabled\ninterpreter /opt/my interp/run\nflags: O\noffset 0\nmagic 0102\n",
			want: binfmt.Live{Enabled: true, Entry: binfmt.Entry{Name: "n", Type: 'M', Magic: []byte{1, 2}, Interpreter: "/opt/my interp/run", Flags: "O"}},
		},
		{name: "empty", data: "", err: "want at least 3"},
		{name: "only the state", data: "enabled\n", err: "want at least 3"},
		{name: "bad state", data: "on\ninterpreter /x\nflags: \nextension .a\n", err: `first line "on"`},
		{name: "no interpreter", data: "enabled\ninterp /x\nflags: \nextension .a\n", err: "second line"},
		{name: "empty interpreter", data: "enabled\ninterpreter \nflags: \nextension .a\n", err: "second line"},
		{name: "no flags line", data: "enabled\ninterpreter /x\nflag: F\nextension .a\n", err: "third line"},
		{name: "unknown flag", data: "enabled\ninterpreter /x\nflags: Z\nextension .a\n", err: "unknown flag"},
		{name: "empty extension", data: "enabled\ninterpreter /x\nflags: \nextension .\n", err: "want extension .EXT"},
		{name: "no match lines", data: "enabled\ninterpreter /x\nflags: \n", err: "0 lines after flags"},
		{name: "too many lines", data: "enabled\ninterpreter /x\nflags: \noffset 0\nmagic 00\nmask ff\nextra\n", err: "4 lines after flags"},
		{name: "negative offset", data: "enabled\ninterpreter /x\nflags: \noffset -1\nmagic 00\n", err: "want offset N"},
		{name: "odd hex", data: "enabled\ninterpreter /x\nflags: \noffset 0\nmagic 0\n", err: "want magic HEX"},
		{name: "empty magic", data: "enabled\ninterpreter /x\nflags: \noffset 0\nmagic \n", err: "want magic HEX"},
		{name: "mask length", data: "enabled\ninterpreter /x\nflags: \noffset 0\nmagic 0000\nmask ff\n", err: "as long as the magic"},
		{name: "mask not hex", data: "enabled\ninterpreter /x\nflags: \noffset 0\nmagic 00\nmask zz\n", err: "want mask HEX"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := binfmt.ParseLive("n", []byte(tt.data))
			if tt.err != "" {
				if err == nil || !errors.Is(err, binfmt.ErrInvalid) || !strings.Contains(err.Error(), tt.err) {
					t.Fatalf("ParseLive(%q) = %+v, %v; want an ErrInvalid containing %q", tt.data, got, err, tt.err)
				}
				if !strings.Contains(err.Error(), `entry "n"`) {
					t.Errorf("ParseLive error %q does not name the entry", err)
				}
				if strings.Count(err.Error(), binfmt.ErrInvalid.Error()) != 1 {
					t.Errorf("ParseLive error %q repeats %q", err, binfmt.ErrInvalid)
				}
				return
			}
			if err != nil {
				t.Fatalf("ParseLive(%q): %v", tt.data, err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("ParseLive(%q)\n got %+v\nwant %+v", tt.data, got, tt.want)
			}
		})
	}
}

func TestStatusParseLiveRoundTrip(t *testing.T) {
	for _, l := range renderLines(t) {
		live, err := binfmt.ParseLive(l.Name, []byte(l.Status()))
		if err != nil {
			t.Errorf("%s: ParseLive(Status()): %v", l, err)
			continue
		}
		if !live.Enabled || !live.Matches(l.Entry) {
			t.Errorf("%s: ParseLive(Status()) = %+v, want %+v", l, live, l.Entry)
		}
	}
}

func TestSameDefinition(t *testing.T) {
	base := binfmt.Entry{Name: "a", Type: 'M', Offset: 1, Magic: []byte("AB"), Mask: []byte{0xff, 0xfe}, Interpreter: "/bin/sh", Flags: "OCF"}
	with := func(f func(*binfmt.Entry)) binfmt.Entry {
		e := base
		f(&e)
		return e
	}
	same := []binfmt.Entry{
		base,
		with(func(e *binfmt.Entry) { e.Name = "other" }), // the name is not compared
		with(func(e *binfmt.Entry) { e.Flags = "CF" }),   // C implies O
		with(func(e *binfmt.Entry) { e.Flags = "FCO" }),  // order
	}
	for _, e := range same {
		if !binfmt.SameDefinition(base, e) || !binfmt.SameDefinition(e, base) {
			t.Errorf("SameDefinition(%+v, %+v) = false, want true", base, e)
		}
	}
	differ := []binfmt.Entry{
		with(func(e *binfmt.Entry) { e.Type = 'E' }),
		with(func(e *binfmt.Entry) { e.Offset = 0 }),
		with(func(e *binfmt.Entry) { e.Magic = []byte("AC") }),
		with(func(e *binfmt.Entry) { e.Mask = nil }),
		with(func(e *binfmt.Entry) { e.Mask = []byte{0xff, 0xff} }),
		with(func(e *binfmt.Entry) { e.Interpreter = "/bin/bash" }),
		with(func(e *binfmt.Entry) { e.Flags = "OC" }),
		with(func(e *binfmt.Entry) { e.Flags = "OCFX" }),
	}
	for _, e := range differ {
		if binfmt.SameDefinition(base, e) {
			t.Errorf("SameDefinition(%+v, %+v) = true, want false", base, e)
		}
	}

	// Extensions have no offset or mask.
	x := binfmt.Entry{Name: "x", Type: 'E', Magic: []byte("jar"), Interpreter: "/bin/sh"}
	y := x
	y.Offset, y.Mask = 3, []byte{1, 2, 3}
	if !binfmt.SameDefinition(x, y) {
		t.Errorf("extension entries differing only in offset and mask compare as different")
	}

	live := binfmt.Live{Entry: base, Enabled: false}
	if !live.Matches(base) {
		t.Errorf("a disabled live entry does not match its definition")
	}
	if live.Matches(with(func(e *binfmt.Entry) { e.Name = "other" })) {
		t.Errorf("Live.Matches ignores the name")
	}
}

func TestHandles(t *testing.T) {
	head := make([]byte, 256)
	copy(head, "\x7fELF\x02\x01\x01\x03")
	copy(head[100:], "OFF")
	head[255] = 'Z'
	tests := []struct {
		e    binfmt.Entry
		path string
		want bool
	}{
		{binfmt.Entry{Type: 'M', Magic: []byte("\x7fELF")}, "/x", true},
		{binfmt.Entry{Type: 'M', Magic: []byte("\x7fELG")}, "/x", false},
		// The mask clears the bits that may differ.
		{binfmt.Entry{Type: 'M', Magic: []byte("\x7fELF\x02\x01\x01\x00"), Mask: []byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x00}}, "/x", true},
		{binfmt.Entry{Type: 'M', Magic: []byte("\x7fELF\x02\x01\x01\x00")}, "/x", false},
		{binfmt.Entry{Type: 'M', Magic: []byte("\x7eELF"), Mask: []byte{0xfe, 0xff, 0xff, 0xff}}, "/x", true},
		{binfmt.Entry{Type: 'M', Offset: 100, Magic: []byte("OFF")}, "/x", true},
		{binfmt.Entry{Type: 'M', Offset: 99, Magic: []byte("OFF")}, "/x", false},
		{binfmt.Entry{Type: 'M', Offset: 255, Magic: []byte("Z")}, "/x", true},
		// Bytes past a short file's end read as zeros.
		{binfmt.Entry{Type: 'M', Offset: 200, Magic: []byte{0, 0}}, "/x", true},
		{binfmt.Entry{Type: 'E', Magic: []byte("jar")}, "/a/b.jar", true},
		{binfmt.Entry{Type: 'E', Magic: []byte("jar")}, "b.jar", true},
		{binfmt.Entry{Type: 'E', Magic: []byte("jar")}, "/a/b.JAR", false},
		{binfmt.Entry{Type: 'E', Magic: []byte("jar")}, "/a/jar", false},
		{binfmt.Entry{Type: 'E', Magic: []byte("gz")}, "/a/b.tar.gz", true},
		{binfmt.Entry{Type: 'E', Magic: []byte("tar.gz")}, "/a/b.tar.gz", false},
		// The kernel takes what follows the last '.' of the whole path.
		{binfmt.Entry{Type: 'E', Magic: []byte("d")}, "/x.d/prog", false},
	}
	for _, tt := range tests {
		if got := tt.e.Handles(tt.path, head); got != tt.want {
			t.Errorf("%+v.Handles(%q) = %v, want %v", tt.e, tt.path, got, tt.want)
		}
	}
}

func TestEntryStatusRendering(t *testing.T) {
	e := binfmt.Entry{Name: "x", Type: 'M', Offset: 3, Magic: []byte{0xAB, 0x01}, Mask: []byte{0xff, 0x0f}, Interpreter: "/i", Flags: "POCF"}
	want := "enabled\ninterpreter /i\nflags: POCF\noffset 3\nmagic ab01\nmask ff0f\n"
	if got := e.Status(); got != want {
		t.Errorf("Status() = %q, want %q", got, want)
	}
	e = binfmt.Entry{Name: "x", Type: 'E', Magic: []byte("jar"), Interpreter: "/i"}
	want = "enabled\ninterpreter /i\nflags: \nextension .jar\n"
	if got := e.Status(); got != want {
		t.Errorf("Status() = %q, want %q", got, want)
	}
}
