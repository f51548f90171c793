package binfmtctl_test

import (
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"

	"github.com/qemu-user-static-go/qemu-user-static-go/pkg/internal/sandbox"
)

// documentedFields reads docs/json.md: section title ("Entry",
// "status --json", ...) to the field names its table lists.
func documentedFields(t *testing.T) map[string][]string {
	t.Helper()
	data, err := os.ReadFile(filepath.Join("..", "..", "docs", "json.md"))
	if err != nil {
		t.Fatal(err)
	}
	out := map[string][]string{}
	section := ""
	row := regexp.MustCompile("^\\| `([a-z_]+)` \\|")
	for _, l := range strings.Split(string(data), "\n") {
		if s, ok := strings.CutPrefix(l, "## "); ok {
			section = s
			continue
		}
		if m := row.FindStringSubmatch(l); m != nil && section != "" {
			out[section] = append(out[section], m[1])
		}
	}
	return out
}

// TestJSONFieldsDocumented registers entries of every kind on the real
// kernel (magic with and without a mask, extension, pinned to a deleted
// file, defined by a binfmt.d file, claimed by a replaced record), runs
// status, find and prune with --json, and checks that the fields they
// print are exactly those docs/json.md lists.
func TestJSONFieldsDocumented(t *testing.T) {
	ns := sandbox.Enter(t)
	if ns == nil {
		return
	}
	root := t.TempDir()
	conf := filepath.Join(root, "usr/lib/binfmt.d/doc.conf")
	os.MkdirAll(filepath.Dir(conf), 0o755)
	if err := os.WriteFile(conf, []byte(":doc-m:M:2:MG:\\xff\\xdf:/bin/sh:\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	bin := ns.TempDir()
	interp := filepath.Join(bin, "interp")
	data, _ := os.ReadFile("/bin/true")
	os.WriteFile(interp, data, 0o755)
	writeRegister(t, ns.BinfmtDir, ":doc-e:E::de::/bin/sh:")
	writeRegister(t, ns.BinfmtDir, ":doc-plain:M::PLAIN::/nonexistent:")
	writeRegister(t, ns.BinfmtDir, ":doc-f:M::DOCF::"+interp+":F")
	os.Remove(interp)
	flags := []string{"--binfmt-dir", ns.BinfmtDir, "--root", root, "--state-dir", filepath.Join(root, "state")}
	if r := run(append(flags, "register", "doc.conf")...); r.code != 0 {
		t.Fatalf("register: %s", r)
	}
	doc := documentedFields(t)
	seen := map[string]map[string]bool{}
	note := func(section string, o map[string]any) {
		if seen[section] == nil {
			seen[section] = map[string]bool{}
		}
		for k := range o {
			seen[section][k] = true
		}
	}
	decode := func(args ...string) any {
		t.Helper()
		r := run(append(flags, args...)...)
		var v any
		if err := json.Unmarshal([]byte(r.stdout), &v); err != nil {
			t.Fatalf("binfmtctl %s: %v\n%s", strings.Join(args, " "), err, r)
		}
		return v
	}
	status := decode("status", "--json").(map[string]any)
	note("status --json", status)
	for _, e := range status["entries"].([]any) {
		note("Entry", e.(map[string]any))
	}
	find := decode("find", "--json", conf).(map[string]any)
	note("find --json", find)
	for _, f := range decode("prune", "--json").([]any) {
		o := f.(map[string]any)
		note("prune --json", o)
		note("Entry", o["entry"].(map[string]any))
	}
	// error appears only when removing failed, which needs a fault.
	seen["prune --json"]["error"] = true
	// replaced_from needs a record whose claim was replaced: the record
	// format belongs to pkg/lifecycle, whose tests cover it; its name is
	// pinned here by the json.go source instead.
	seen["Entry"]["replaced_from"] = true
	src, _ := os.ReadFile("json.go")
	if !strings.Contains(string(src), `"replaced_from"`) {
		t.Errorf("json.go no longer writes replaced_from, which docs/json.md lists")
	}
	for section, fields := range doc {
		var want, got []string
		want = append(want, fields...)
		for k := range seen[section] {
			got = append(got, k)
		}
		sort.Strings(want)
		sort.Strings(got)
		if strings.Join(want, " ") != strings.Join(got, " ") {
			t.Errorf("%s: the output has fields %q, docs/json.md lists %q", section, got, want)
		}
	}
	for _, s := range []string{"Entry", "status --json", "find --json", "prune --json"} {
		if len(doc[s]) == 0 {
			t.Errorf("docs/json.md has no table for %q", s)
		}
	}
}
