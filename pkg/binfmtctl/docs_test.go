package binfmtctl

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// renderDocs renders the manual page (with versionMark for the version)
// and the completion scripts from the command table, by the names they
// have in docs/.
func renderDocs() (map[string]string, error) {
	p := program()
	p.Version = versionMark
	out := map[string]string{}
	var b strings.Builder
	if err := p.WriteManual(&b); err != nil {
		return nil, err
	}
	out["binfmtctl.8"] = b.String()
	for shell, name := range map[string]string{"bash": "binfmtctl.bash", "zsh": "_binfmtctl", "fish": "binfmtctl.fish"} {
		b.Reset()
		if err := p.WriteCompletion(&b, shell); err != nil {
			return nil, err
		}
		out[name] = b.String()
	}
	return out, nil
}

// TestEmbeddedDocs checks that the manual page and completions binfmtctl
// prints (embedded from docs/) are what the command table renders now,
// and that the manual carries the version binfmtctl was linked with.
// UPDATE_DOCS=1 (make binfmtctl-docs-update) writes docs/ instead.
func TestEmbeddedDocs(t *testing.T) {
	want, err := renderDocs()
	if err != nil {
		t.Fatal(err)
	}
	if os.Getenv("UPDATE_DOCS") != "" {
		for name, text := range want {
			if err := os.WriteFile(filepath.Join("docs", name), []byte(text), 0o644); err != nil {
				t.Fatal(err)
			}
		}
		return
	}
	embedded := map[string]string{"binfmtctl.8": manualPage, "binfmtctl.bash": bashCompletion, "_binfmtctl": zshCompletion, "binfmtctl.fish": fishCompletion}
	for name, text := range want {
		if embedded[name] != text {
			t.Errorf("pkg/binfmtctl/docs/%s is not what the command table renders now: run make binfmtctl-docs-update", name)
		}
	}
	// The version, set at link time, goes in as the renderer writes it.
	defer func(v string) { Version = v }(Version)
	Version = `9.8-7"\x`
	var b, direct strings.Builder
	if err := Manual(&b); err != nil {
		t.Fatal(err)
	}
	if err := program().WriteManual(&direct); err != nil {
		t.Fatal(err)
	}
	if b.String() != direct.String() {
		t.Errorf("the manual for version %q is not what the command table renders:\n%.200s\nwant\n%.200s", Version, b.String(), direct.String())
	}
	if err := Completion(&b, "tcsh"); err == nil || !strings.Contains(err.Error(), `"tcsh"`) {
		t.Errorf("Completion(tcsh) = %v, want an error quoting the shell", err)
	}
}
