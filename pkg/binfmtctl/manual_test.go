package binfmtctl

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/qemu-user-static-go/qemu-user-static-go/pkg/internal/sandbox"
)

// parserWords lists what the parser accepts, read from the parser's own
// flagSets and command table rather than from the clidoc description:
// every command, every command's flags and the global flags, as they
// appear in a manual page or a bash or zsh script.
func parserWords() []string {
	var words []string
	top := &flagSet{}
	var g globals
	var help, version bool
	topFlags(top, &g, &help, &version)
	add := func(fs *flagSet) {
		for _, d := range fs.flags {
			words = append(words, "--"+d.name)
			if d.short != "" {
				words = append(words, "-"+d.short)
			}
		}
	}
	add(top)
	for _, cmd := range commands {
		words = append(words, cmd.name)
		add(commandFlags(cmd))
	}
	return words
}

// TestManualAndCompletionsCoverTheParser checks that every command and
// flag the parser accepts appears in the manual and in each completion
// script. Adding a flag to the table adds it to all four.
func TestManualAndCompletionsCoverTheParser(t *testing.T) {
	outputs := map[string]string{}
	var b bytes.Buffer
	if err := Manual(&b); err != nil {
		t.Fatal(err)
	}
	outputs["man"] = strings.NewReplacer(`\-`, "-", `\fB`, " ", `\fI`, " ", `\fR`, " ").Replace(b.String())
	for _, sh := range []string{"bash", "zsh", "fish"} {
		b.Reset()
		if err := Completion(&b, sh); err != nil {
			t.Fatal(err)
		}
		outputs[sh] = b.String()
	}
	for format, out := range outputs {
		for _, w := range parserWords() {
			spelled := w
			if format == "fish" && strings.HasPrefix(w, "--") {
				spelled = "-l " + strings.TrimPrefix(w, "--")
			} else if format == "fish" && strings.HasPrefix(w, "-") {
				spelled = "-s " + strings.TrimPrefix(w, "-")
			}
			if !containsToken(out, spelled) {
				t.Errorf("the %s output lacks %q, which the parser accepts", format, spelled)
			}
		}
	}
}

// containsToken reports whether s occurs in out between characters that
// cannot be part of a name.
func containsToken(out, s string) bool {
	isName := func(b byte) bool {
		return b == '-' || b == '_' || b >= 'a' && b <= 'z' || b >= '0' && b <= '9'
	}
	for i := 0; i < len(out); {
		j := strings.Index(out[i:], s)
		if j < 0 {
			return false
		}
		j += i
		if (j == 0 || !isName(out[j-1])) && (j+len(s) == len(out) || !isName(out[j+len(s)])) {
			return true
		}
		i = j + 1
	}
	return false
}

// TestCompletionScriptsParse has each shell check its script's syntax,
// and bash, fish and zsh complete commands, flags and a hook phase.
func TestCompletionScriptsParse(t *testing.T) {
	dir := t.TempDir()
	for _, sh := range []string{"bash", "zsh", "fish"} {
		sandbox.Require(t, sh, sh)
		var b bytes.Buffer
		if err := Completion(&b, sh); err != nil {
			t.Fatal(err)
		}
		path := filepath.Join(dir, "binfmtctl."+sh)
		if err := os.WriteFile(path, b.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
		if out, err := exec.Command(sh, "-n", path).CombinedOutput(); err != nil || len(out) > 0 {
			t.Errorf("%s -n %s: %v\n%s", sh, path, err, out)
		}
	}
	fpath := t.TempDir()
	var b bytes.Buffer
	if err := Completion(&b, "zsh"); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(fpath, "_binfmtctl"), b.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	work := t.TempDir()
	for _, tt := range []struct{ line, want string }{
		{"binfmtctl sta", "status"},
		{"binfmtctl --root /x pru", "prune"},
		{"binfmtctl prune --pi", "--pinned"},
		{"binfmtctl register --fo", "--force"},
		{"binfmtctl cat-config --an", "--annotate"},
		{"binfmtctl hook postu", "postun"},
		{"binfmtctl completion fi", "fish"},
		{"binfmtctl help cat", "cat-config"},
	} {
		words := strings.Fields(tt.line)
		if got := strings.Join(sandbox.BashComplete(t, work, filepath.Join(dir, "binfmtctl.bash"), "_binfmtctl", words...), " "); got != tt.want {
			t.Errorf("bash completes %q to %q, want %q", tt.line, got, tt.want)
		}
		if got := strings.Join(sandbox.FishComplete(t, work, filepath.Join(dir, "binfmtctl.fish"), tt.line), " "); got != tt.want {
			t.Errorf("fish completes %q to %q, want %q", tt.line, got, tt.want)
		}
		if got := strings.Join(sandbox.ZshComplete(t, work, fpath, tt.line), " "); got != tt.want {
			t.Errorf("zsh completes %q to %q, want %q", tt.line, got, tt.want)
		}
	}
}

// TestManualFormats has groff format the manual page with every warning
// on.
func TestManualFormats(t *testing.T) {
	sandbox.Require(t, "groff", "groff-base")
	var b bytes.Buffer
	if err := Manual(&b); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("groff", "-man", "-Tutf8", "-ww", "-z")
	cmd.Stdin = &b
	if out, err := cmd.CombinedOutput(); err != nil || len(out) > 0 {
		t.Errorf("groff -man -ww: %v\n%s", err, out)
	}
}

// TestEveryCommandsConventions runs each command of the table with an
// unknown flag (exit 2, the usage on stderr, nothing on stdout), with
// --help and through "help COMMAND" (exit 0, the same help on stdout,
// nothing on stderr).
func TestEveryCommandsConventions(t *testing.T) {
	run := func(args ...string) (int, string, string) {
		var out, errb bytes.Buffer
		code := Run(args, &out, &errb)
		return code, out.String(), errb.String()
	}
	for _, cmd := range commands {
		code, out, errs := run(cmd.name, "--no-such-flag")
		if code != exitUsage || out != "" || !strings.Contains(errs, "unknown flag: --no-such-flag") || !strings.Contains(errs, "usage: binfmtctl "+cmd.name) {
			t.Errorf("binfmtctl %s --no-such-flag: exit %d, stdout %q, stderr %q; want exit 2 and the usage on stderr", cmd.name, code, out, errs)
		}
		code, help, errs := run(cmd.name, "--help")
		if code != exitOK || errs != "" || !strings.HasPrefix(help, "usage: binfmtctl [global flags] "+cmd.name+" ") {
			t.Errorf("binfmtctl %s --help: exit %d, stdout %q, stderr %q", cmd.name, code, help, errs)
		}
		code, out, errs = run("help", cmd.name)
		if code != exitOK || errs != "" || out != help {
			t.Errorf("binfmtctl help %s: exit %d, stderr %q, stdout differs from %s --help:\n%s", cmd.name, code, errs, cmd.name, out)
		}
	}
}
