package scriptlets

import (
	"os/exec"
	"strings"
	"testing"
)

func TestRenderLeavesNoMacro(t *testing.T) {
	s := Render("foo", "1.2", "3")
	for name, body := range map[string]string{"post": s.Post, "preun": s.Preun, "postun": s.Postun} {
		if strings.Contains(body, "%{") {
			t.Errorf("%s still holds a macro:\n%s", name, body)
		}
		if !strings.Contains(body, "'foo-1.2-3'") {
			t.Errorf("%s does not pass the package's name-version-release:\n%s", name, body)
		}
		// Scriptlets must never fail a transaction.
		if !strings.HasSuffix(strings.TrimSpace(body), "|| :") && !strings.HasSuffix(strings.TrimSpace(body), ":") {
			t.Errorf("%s does not end in || : or :", name)
		}
		if out, err := exec.Command("sh", "-n", "-c", body).CombinedOutput(); err != nil {
			t.Errorf("%s is not valid sh: %v\n%s", name, err, out)
		}
	}
}

func TestExpandMacros(t *testing.T) {
	vars := map[string]string{"name": "pkg", "version": "1.0", "release": "2", "arch": "x86_64"}
	cases := []struct {
		in, want, err string
	}{
		{"x '%{name}-%{version}-%{release}' y", "x 'pkg-1.0-2' y", ""},
		{"%{arch}", "x86_64", ""},
		{"100%% sure", "100% sure", ""},
		{"${claim%/*} ${x%%.*} 50%", "${claim%/*} ${x%.*} 50%", ""},
		{"printf '%s\\n' %d", "printf '%s\\n' %d", ""},
		{"trailing %", "trailing %", ""},
		{"no macros", "no macros", ""},
		{"%{_bindir}/x", "", "%{_bindir} is not one the build defines"},
		{"%{?dist}", "", "%{?dist}"},
		{"x %{name", "", "unterminated macro"},
	}
	for _, c := range cases {
		got, err := Expand("post.sh", c.in, vars)
		if c.err != "" {
			if err == nil || !strings.Contains(err.Error(), c.err) || !strings.Contains(err.Error(), "post.sh") {
				t.Errorf("Expand(%q): error %v, want one mentioning %q and the file", c.in, err, c.err)
			}
			continue
		}
		if err != nil || got != c.want {
			t.Errorf("Expand(%q) = %q, %v; want %q", c.in, got, err, c.want)
		}
	}
}
