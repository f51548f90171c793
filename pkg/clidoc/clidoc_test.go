package clidoc_test

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/qemu-user-static-go/qemu-user-static-go/pkg/clidoc"
	"github.com/qemu-user-static-go/qemu-user-static-go/pkg/internal/sandbox"
)

// sample has the text that shells and roff read as syntax: quotes,
// brackets, colons, a dollar, a backslash, a leading dot.
func sample() *clidoc.Program {
	dirs := clidoc.Completion{Dirs: true}
	return &clidoc.Program{
		Name:        "tool-x",
		Section:     "8",
		Version:     "1.2",
		Summary:     "does [things]: it's \"quoted\" $HOME \\n",
		Description: ".starts with a dot\nand 'quotes'\n\nsecond paragraph",
		Flags: []clidoc.Flag{
			{Name: "root", Arg: "DIR", Default: "/", Usage: "root [dir]: it's $1", Complete: dirs},
			{Name: "help", Short: "h", Usage: "show help"},
			{Name: "level", Short: "l", Arg: "N", Usage: "a level", Complete: clidoc.Completion{Words: []string{"low", "high"}}},
		},
		Commands: []clidoc.Command{
			{Name: "apply", Args: "FILE...", Summary: "apply: files [all] of 'them'", Complete: clidoc.Completion{Files: true},
				Flags: []clidoc.Flag{{Name: "dry-run", Usage: "only say"}, {Name: "out", Arg: "FILE", Usage: "output", Complete: clidoc.Completion{Files: true}}}},
			{Name: "hook", Args: "post|pre N", Summary: "a hook", Complete: clidoc.Completion{Words: []string{"post", "pre"}, FirstOnly: true}},
			{Name: "list", Summary: "list things", Complete: clidoc.Completion{Dynamic: "printf '%s\\n' one two"}},
			{Name: "help", Args: "[COMMAND]", Summary: "help", Complete: clidoc.Completion{Commands: true, FirstOnly: true}},
		},
		Sections: []clidoc.Section{{Title: "Exit status", Body: "  0  ok\n  2  usage"}},
	}
}

func render(t *testing.T, p *clidoc.Program, format string) string {
	t.Helper()
	var b bytes.Buffer
	var err error
	if format == "man" {
		err = p.WriteManual(&b)
	} else {
		err = p.WriteCompletion(&b, format)
	}
	if err != nil {
		t.Fatalf("rendering %s: %v", format, err)
	}
	return b.String()
}

func TestEveryCommandAndFlagAppears(t *testing.T) {
	p := sample()
	for _, format := range append([]string{"man"}, clidoc.Shells...) {
		if m := p.Missing(render(t, p, format), format); len(m) > 0 {
			t.Errorf("%s output lacks %s", format, strings.Join(m, ", "))
		}
	}
}

// TestMissing checks the checker: an output without a flag is caught,
// and a flag is not found inside a longer one.
func TestMissing(t *testing.T) {
	p := &clidoc.Program{Name: "t", Flags: []clidoc.Flag{{Name: "root"}}, Commands: []clidoc.Command{{Name: "go"}}}
	if got, want := p.Missing("go --rootless", "bash"), []string{"flag --root"}; !reflect.DeepEqual(got, want) {
		t.Errorf("Missing = %q, want %q", got, want)
	}
	if got := p.Missing(`\fBgo\fR \fB\-\-root\fR`, "man"); len(got) != 0 {
		t.Errorf("Missing(man) = %q, want nothing", got)
	}
	if got := p.Missing("complete -c t -l root\ngo", "fish"); len(got) != 0 {
		t.Errorf("Missing(fish) = %q, want nothing", got)
	}
}

func TestCheckRefusesSyntax(t *testing.T) {
	for _, p := range []*clidoc.Program{
		{Name: "a b"},
		{Name: "t", Commands: []clidoc.Command{{Name: "x;rm"}}},
		{Name: "t", Flags: []clidoc.Flag{{Name: "x'"}}},
		{Name: "t", Commands: []clidoc.Command{{Name: "x", Complete: clidoc.Completion{Words: []string{"$(id)"}}}}},
	} {
		if err := p.WriteManual(&bytes.Buffer{}); err == nil {
			t.Errorf("WriteManual(%+v) succeeded, want an error", p)
		}
	}
	if err := sample().WriteCompletion(&bytes.Buffer{}, "tcsh"); err == nil || !strings.Contains(err.Error(), `"tcsh"`) {
		t.Errorf("WriteCompletion(tcsh) = %v, want an error naming the shell", err)
	}
}

// TestManualGroff has groff format the page with every warning on: a
// roff mistake (an unescaped request, a bad font) is a warning.
func TestManualGroff(t *testing.T) {
	sandbox.Require(t, "groff", "groff-base")
	man := render(t, sample(), "man")
	cmd := exec.Command("groff", "-man", "-Tutf8", "-ww", "-z")
	cmd.Stdin = strings.NewReader(man)
	out, err := cmd.CombinedOutput()
	if err != nil || len(out) > 0 {
		t.Fatalf("groff -man -ww: %v\n%s\npage:\n%s", err, out, man)
	}
	text := groffText(t, man)
	for _, want := range []string{".starts with a dot", `does [things]: it's "quoted" $HOME \n`, "--root DIR", "-l, --level N", "apply [FLAGS] FILE..."} {
		if !strings.Contains(text, want) {
			t.Errorf("formatted page lacks %q:\n%s", want, text)
		}
	}
}

func groffText(t *testing.T, man string) string {
	cmd := exec.Command("groff", "-man", "-Tascii", "-P-cbou", "-rLL=200n")
	cmd.Stdin = strings.NewReader(man)
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("groff: %v", err)
	}
	return strings.Join(strings.Fields(string(out)), " ")
}

func writeScript(t *testing.T, p *clidoc.Program, shell string) string {
	path := filepath.Join(t.TempDir(), "completion."+shell)
	if err := os.WriteFile(path, []byte(render(t, p, shell)), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// TestScriptSyntax runs each shell's own syntax check on its script.
func TestScriptSyntax(t *testing.T) {
	for _, shell := range clidoc.Shells {
		t.Run(shell, func(t *testing.T) {
			sandbox.Require(t, shell, shell)
			path := writeScript(t, sample(), shell)
			if out, err := exec.Command(shell, "-n", path).CombinedOutput(); err != nil || len(out) > 0 {
				t.Errorf("%s -n: %v\n%s", shell, err, out)
			}
		})
	}
}

// completionCases hold what each shell must complete, the same for bash
// and fish.
var completionCases = []struct {
	line []string // the last word is the one being completed
	want []string
}{
	{[]string{"tool-x", "ap"}, []string{"apply"}},
	{[]string{"tool-x", "--root", "/x", "h"}, []string{"help", "hook"}},
	{[]string{"tool-x", "hook", "p"}, []string{"post", "pre"}},
	{[]string{"tool-x", "hook", "post", "p"}, nil},
	{[]string{"tool-x", "list", ""}, []string{"one", "two"}},
	{[]string{"tool-x", "help", "l"}, []string{"list"}},
	{[]string{"tool-x", "apply", "--d"}, []string{"--dry-run"}},
	{[]string{"tool-x", "--level", ""}, []string{"high", "low"}},
	{[]string{"tool-x", "apply", "--out", "fi"}, []string{"file.conf"}},
	{[]string{"tool-x", "apply", "fi"}, []string{"file.conf"}},
}

func TestBashCompletes(t *testing.T) {
	script := writeScript(t, sample(), "bash")
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "file.conf"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	for _, tt := range completionCases {
		if got := sandbox.BashComplete(t, dir, script, "_tool_x", tt.line...); !reflect.DeepEqual(got, tt.want) && !(len(got) == 0 && len(tt.want) == 0) {
			t.Errorf("bash completes %q to %q, want %q", tt.line, got, tt.want)
		}
	}
}

func TestFishCompletes(t *testing.T) {
	script := writeScript(t, sample(), "fish")
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "file.conf"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	for _, tt := range completionCases {
		line := strings.Join(tt.line, " ")
		if got := sandbox.FishComplete(t, dir, script, line); !reflect.DeepEqual(got, tt.want) && !(len(got) == 0 && len(tt.want) == 0) {
			t.Errorf("fish completes %q to %q, want %q", line, got, tt.want)
		}
	}
}

func TestZshCompletes(t *testing.T) {
	fpath := t.TempDir()
	if err := os.WriteFile(filepath.Join(fpath, "_tool-x"), []byte(render(t, sample(), "zsh")), 0o644); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "file.conf"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	for _, tt := range completionCases {
		line := strings.Join(tt.line, " ")
		if got := sandbox.ZshComplete(t, dir, fpath, line); !reflect.DeepEqual(got, tt.want) && !(len(got) == 0 && len(tt.want) == 0) {
			t.Errorf("zsh completes %q to %q, want %q", line, got, tt.want)
		}
	}
}

// TestZshLoads sources the zsh script with the completion system loaded
// and checks that it defines its function and registers it.
func TestZshLoads(t *testing.T) {
	sandbox.Require(t, "zsh", "zsh")
	script := writeScript(t, sample(), "zsh")
	dir := filepath.Dir(script)
	prog := "autoload -Uz compinit && compinit -u -d " + dir + "/zcompdump && source " + script + " && whence -w _tool_x && print -r -- $_comps[tool-x]"
	cmd := exec.Command("zsh", "-f", "-c", prog)
	cmd.Env = append(os.Environ(), "HOME="+dir, "ZDOTDIR="+dir)
	out, err := cmd.CombinedOutput()
	if err != nil || !strings.Contains(string(out), "_tool_x: function") || !strings.HasSuffix(strings.TrimSpace(string(out)), "_tool_x") {
		t.Fatalf("zsh: %v\n%s", err, out)
	}
}
