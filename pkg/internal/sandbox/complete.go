package sandbox

import (
	"os"
	"os/exec"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// The shells' own completion machinery, driven for tests of generated
// completion scripts: each function returns, sorted, the candidates the
// shell offers when the last word of a command line is completed, run
// in dir (where file names complete from). They fail the test when the
// shell is missing (Require) or the script does not load.

// BashComplete sources script in bash and calls its completion function
// fn the way programmable completion does, with COMP_WORDS set to words
// (the last one being completed).
func BashComplete(t testing.TB, dir, script, fn string, words ...string) []string {
	t.Helper()
	Require(t, "bash", "bash")
	var quoted []string
	for _, w := range words {
		quoted = append(quoted, "'"+strings.ReplaceAll(w, "'", `'\''`)+"'")
	}
	prog := "source " + script + "\nCOMP_WORDS=(" + strings.Join(quoted, " ") + ")\nCOMP_CWORD=" +
		strconv.Itoa(len(words)-1) + "\n" + fn + "\nprintf '%s\\n' \"${COMPREPLY[@]}\"\n"
	cmd := exec.Command("bash", "--norc", "--noprofile", "-c", prog)
	cmd.Dir = dir
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("bash completion of %q: %v\n%s", words, err, out)
	}
	lines := strings.Fields(string(out))
	sort.Strings(lines)
	return lines
}

// FishComplete sources script in fish and asks complete -C for line.
func FishComplete(t testing.TB, dir, script, line string) []string {
	t.Helper()
	Require(t, "fish", "fish")
	cmd := exec.Command("fish", "--no-config", "-c", "source "+script+"; complete -C '"+strings.ReplaceAll(line, "'", `\'`)+"'")
	cmd.Dir = dir
	home := t.TempDir()
	cmd.Env = append(os.Environ(), "HOME="+home, "XDG_CONFIG_HOME="+home, "XDG_DATA_HOME="+home, "XDG_CACHE_HOME="+home)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("fish completion of %q: %v\n%s", line, err, out)
	}
	var got []string
	for _, l := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		if w, _, _ := strings.Cut(l, "\t"); w != "" {
			got = append(got, w)
		}
	}
	sort.Strings(got)
	return got
}

// zshCapture drives an interactive zsh in a pseudo-terminal (zsh's own
// zpty module): it loads the completion system with $1 in fpath, wraps
// compadd to print what each call adds, types the line $2 and a TAB, and
// prints the terminal's output once a marker shows that zsh is done.
const zshCapture = `zmodload zsh/zpty
# await MARK: read the terminal until MARK shows, for at most 15s. zle
# drops what is typed ahead while it starts, so each step waits.
await() {
  local chunk
  integer n=0
  while [[ $all != *$1* ]] && (( n++ < 300 )); do
    if zpty -r -t z chunk; then all+=$chunk; else sleep 0.05; fi
  done
  [[ $all == *$1* ]] || { print -r -- "$all"; exit 1 }
}
all=
zpty z zsh -f -i
zpty -w z "PS1=''; fpath=($1 \$fpath); autoload -Uz compinit; compinit -u -d $1/zcompdump"
zpty -w z 'compadd() { local -a a; builtin compadd -O a "$@"; print -r -- "<<${(j: :)a}>>"; builtin compadd "$@" }'
zpty -w z 'print -r -- __REA""DY__'
await __READY__
zpty -w -n z "$2"$'\t'
zpty -w -n z $'\C-u'
zpty -w z 'print -r -- __DO""NE__'
await __DONE__
print -r -- "$all"
`

// ZshComplete completes line in an interactive zsh whose fpath has
// fpathDir, where the script lies as _NAME (the #compdef file), and
// returns every word the completion functions added.
func ZshComplete(t testing.TB, dir, fpathDir, line string) []string {
	t.Helper()
	Require(t, "zsh", "zsh")
	home := t.TempDir()
	cmd := exec.Command("zsh", "-f", "-c", zshCapture, "zsh", fpathDir, line)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "HOME="+home, "ZDOTDIR="+home, "TERM=xterm")
	var killed atomic.Bool
	timer := time.AfterFunc(20*time.Second, func() {
		killed.Store(true)
		if cmd.Process != nil {
			cmd.Process.Kill()
		}
	})
	out, err := cmd.CombinedOutput()
	timer.Stop()
	if killed.Load() {
		t.Fatalf("zsh completion of %q did not finish in 20s:\n%s", line, out)
	}
	if err != nil {
		t.Fatalf("zsh completion of %q: %v\n%s", line, err, out)
	}
	seen := map[string]bool{}
	var got []string
	for _, m := range regexp.MustCompile(`<<([^<>]*)>>`).FindAllStringSubmatch(string(out), -1) {
		for _, w := range strings.Fields(m[1]) {
			// The wrapper's own definition is echoed too.
			if w != "${(j:" && w != ":)a}" && !seen[w] {
				seen[w] = true
				got = append(got, w)
			}
		}
	}
	sort.Strings(got)
	if len(got) == 0 {
		t.Logf("zsh's terminal for %q:\n%q", line, out)
	}
	return got
}
