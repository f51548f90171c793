package buildtool

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/spf13/pflag"

	"github.com/qemu-user-static-go/qemu-user-static-go/pkg/internal/sandbox"
)

// parserWords lists what the parser accepts, read from the parser's own
// flag sets and command table rather than from the clidoc description:
// every command and every spelling of its flags, and the top-level ones.
func parserWords() []string {
	words := []string{"--help", "-h", "--version"}
	for _, c := range commands() {
		words = append(words, c.name)
		fs, _ := flagSet(c)
		fs.VisitAll(func(f *pflag.Flag) {
			words = append(words, "--"+f.Name)
			if f.Shorthand != "" {
				words = append(words, "-"+f.Shorthand)
			}
		})
	}
	return words
}

// hasToken reports whether s occurs in out between characters that
// cannot be part of a name.
func hasToken(out, s string) bool {
	isName := func(b byte) bool {
		return b == '-' || b == '_' || b >= 'a' && b <= 'z' || b >= 'A' && b <= 'Z' || b >= '0' && b <= '9'
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

// TestManualAndCompletionsCoverTheParser checks that every command and
// flag the parser accepts appears in the manual and in each completion
// script: a flag added to a command's definition appears in all four.
func TestManualAndCompletionsCoverTheParser(t *testing.T) {
	outputs := map[string]string{}
	var b bytes.Buffer
	if code := Run([]string{"manual"}, &b, os.Stderr); code != 0 {
		t.Fatalf("manual exited %d", code)
	}
	outputs["man"] = strings.NewReplacer(`\-`, "-", `\fB`, " ", `\fI`, " ", `\fR`, " ").Replace(b.String())
	for _, sh := range []string{"bash", "zsh", "fish"} {
		b.Reset()
		if code := Run([]string{"completion", sh}, &b, os.Stderr); code != 0 {
			t.Fatalf("completion %s exited %d", sh, code)
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
			if format == "fish" && w == "--version" {
				// fish completes flags after a command only; the
				// top-level --version is build's spelling there too.
				continue
			}
			if !hasToken(out, spelled) {
				t.Errorf("the %s output lacks %q, which the parser accepts", format, spelled)
			}
		}
	}
}

// TestManualFormats has groff format the manual page with every warning
// on, and checks that the lists of its sections are set as lists.
func TestManualFormats(t *testing.T) {
	sandbox.Require(t, "groff", "groff-base")
	var b bytes.Buffer
	if err := Manual(&b); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("groff", "-man", "-Tutf8", "-ww", "-z")
	cmd.Stdin = bytes.NewReader(b.Bytes())
	if out, err := cmd.CombinedOutput(); err != nil || len(out) > 0 {
		t.Errorf("groff -man -ww: %v\n%s", err, out)
	}
	for _, want := range []string{".SH EXIT STATUS\n.TP\n\\fB0\\fR\nsuccess\n", ".TP\n\\fB2\\fR\nthe command line was wrong\n", "\\fB\\-\\-qemu\\-suffix\\fR \\fISUFFIX\\fR"} {
		if !strings.Contains(b.String(), want) {
			t.Errorf("the manual lacks %q", want)
		}
	}
}

// TestCompletionScripts has each shell check its script's syntax, and
// bash and fish complete a command, a flag and a value.
func TestCompletionScripts(t *testing.T) {
	dir := t.TempDir()
	for _, sh := range []string{"bash", "zsh", "fish"} {
		sandbox.Require(t, sh, sh)
		var b bytes.Buffer
		if err := Completion(&b, sh); err != nil {
			t.Fatal(err)
		}
		path := filepath.Join(dir, "qemu-user-static-go."+sh)
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
		prog := "source " + filepath.Join(dir, "qemu-user-static-go.bash") + "; COMP_WORDS=(" + strings.Join(words, " ") + "); COMP_CWORD=" +
			strconv.Itoa(len(words)-1) + "; _qemu_user_static_go; echo \"${COMPREPLY[*]}\""
		out, err := exec.Command("bash", "--norc", "-c", prog).CombinedOutput()
		if err != nil {
			t.Fatalf("bash completion of %q: %v\n%s", line, err, out)
		}
		return strings.TrimSpace(string(out))
	}
	fish := func(line string) string {
		home := t.TempDir()
		cmd := exec.Command("fish", "--no-config", "-c", "source "+filepath.Join(dir, "qemu-user-static-go.fish")+"; complete -C '"+line+"'")
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
		{"qemu-user-static-go bui", "build"},
		{"qemu-user-static-go build --qemu-su", "--qemu-suffix"},
		{"qemu-user-static-go build --compression smalle", "smallest"},
		{"qemu-user-static-go conf --cpus aarch64_", "aarch64_be"},
		{"qemu-user-static-go help ins", "inspect"},
		{"qemu-user-static-go completion z", "zsh"},
	} {
		if got := bash(tt.line); got != tt.want {
			t.Errorf("bash completes %q to %q, want %q", tt.line, got, tt.want)
		}
		if got := fish(tt.line); got != tt.want {
			t.Errorf("fish completes %q to %q, want %q", tt.line, got, tt.want)
		}
	}
}
