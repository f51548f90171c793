package binfmtctl

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
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
// and bash and fish complete a command, its flags and a hook phase.
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
	bash := func(line string) string {
		words := strings.Fields(line)
		if strings.HasSuffix(line, " ") {
			words = append(words, "")
		}
		prog := "source " + filepath.Join(dir, "binfmtctl.bash") + "; COMP_WORDS=(" + strings.Join(words, " ") + "); COMP_CWORD=" +
			strconv.Itoa(len(words)-1) + "; _binfmtctl; echo \"${COMPREPLY[*]}\""
		out, err := exec.Command("bash", "--norc", "-c", prog).CombinedOutput()
		if err != nil {
			t.Fatalf("bash completion of %q: %v\n%s", line, err, out)
		}
		return strings.TrimSpace(string(out))
	}
	fish := func(line string) string {
		home := t.TempDir()
		cmd := exec.Command("fish", "--no-config", "-c", "source "+filepath.Join(dir, "binfmtctl.fish")+"; complete -C '"+line+"'")
		cmd.Env = append(os.Environ(), "HOME="+home, "XDG_CONFIG_HOME="+home, "XDG_DATA_HOME="+home, "XDG_CACHE_HOME="+home)
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("fish completion of %q: %v\n%s", line, err, out)
		}
		var w []string
		for _, l := range strings.Split(strings.TrimSpace(string(out)), "\n") {
			first, _, _ := strings.Cut(l, "\t")
			w = append(w, first)
		}
		return strings.Join(w, " ")
	}
	for _, tt := range []struct{ line, want string }{
		{"binfmtctl sta", "status"},
		{"binfmtctl --root /x pru", "prune"},
		{"binfmtctl prune --pi", "--pinned"},
		{"binfmtctl register --fo", "--force"},
		{"binfmtctl hook postu", "postun"},
		{"binfmtctl completion fi", "fish"},
		{"binfmtctl help cat", "cat-config"},
	} {
		if got := bash(tt.line); got != tt.want {
			t.Errorf("bash completes %q to %q, want %q", tt.line, got, tt.want)
		}
		if got := fish(tt.line); got != tt.want {
			t.Errorf("fish completes %q to %q, want %q", tt.line, got, tt.want)
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
