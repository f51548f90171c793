package clidoc

import (
	"fmt"
	"strings"
)

// Program describes a command-line program.
type Program struct {
	Name    string // the program's file name, "binfmtctl"
	Section string // manual section, "8"
	Version string // shown in the manual's footer
	Summary string // one line for the manual's NAME section, without the name
	// Synopsis lines, without the program name; empty means
	// "[FLAGS] COMMAND [ARGS]" when there are commands.
	Synopsis []string
	// Description is the manual's DESCRIPTION: paragraphs separated by
	// blank lines.
	Description string
	Flags       []Flag    // flags accepted everywhere
	Commands    []Command // in the order the manual lists them
	// Sections are added after COMMANDS and OPTIONS, in order
	// ("EXIT STATUS", "FILES", "SEE ALSO").
	Sections []Section
}

// Command is one subcommand.
type Command struct {
	Name    string
	Args    string // the arguments' synopsis, "FILE|NAME..."
	Summary string // one line
	// Description, when not empty, follows the summary in the manual.
	Description string
	Flags       []Flag // the command's own flags, besides Program.Flags
	Complete    Completion
}

// Flag is one flag. A flag with an Arg takes a value.
type Flag struct {
	Name     string // long name without dashes, "binfmt-dir"
	Short    string // one letter, or ""
	Arg      string // the value's name, "DIR"; "" for a boolean flag
	Default  string // shown when not empty
	Usage    string
	Complete Completion // what the value completes to
}

// Completion says what an argument completes to. The zero value
// completes to nothing.
type Completion struct {
	Words    []string // fixed words
	Files    bool     // file names
	Dirs     bool     // directory names
	Commands bool     // the program's command names
	// Dynamic is a POSIX shell command printing one candidate a line,
	// run when the user asks for a completion.
	Dynamic string
	// FirstOnly applies the completion to a command's first argument
	// only; the later ones complete to nothing.
	FirstOnly bool
}

// Section is an extra manual section.
type Section struct {
	Title string
	// Body holds paragraphs separated by blank lines. A paragraph whose
	// lines start with "  " is set as a list: each line "  TERM  TEXT"
	// becomes a tagged paragraph.
	Body string
}

// CommandNames returns the command names, sorted.
func (p *Program) CommandNames() []string {
	names := make([]string, 0, len(p.Commands))
	for _, c := range p.Commands {
		names = append(names, c.Name)
	}
	sortStrings(names)
	return names
}

// Check reports descriptions that the renderers cannot represent: names
// that a shell or roff would read as syntax.
func (p *Program) Check() error {
	if err := checkWord("program name", p.Name); err != nil {
		return err
	}
	if err := checkFlags(p.Flags); err != nil {
		return err
	}
	for _, c := range p.Commands {
		if err := checkWord("command", c.Name); err != nil {
			return err
		}
		if err := checkFlags(c.Flags); err != nil {
			return err
		}
		if err := checkWords(c.Complete.Words); err != nil {
			return err
		}
	}
	return nil
}

// checkFlags checks the names, short names and completion words of fs.
//
// Not inlined, nor are the checks it calls: one copy each keeps
// binfmtctl small.
//
//go:noinline
func checkFlags(fs []Flag) error {
	for _, f := range fs {
		if err := checkWord("flag", f.Name); err != nil {
			return err
		}
		if f.Short != "" {
			if len(f.Short) != 1 {
				return badWord("short flag", f.Short)
			}
			if err := checkWord("short flag", f.Short); err != nil {
				return err
			}
		}
		if err := checkWords(f.Complete.Words); err != nil {
			return err
		}
	}
	return nil
}

//go:noinline
func checkWords(ws []string) error {
	for _, w := range ws {
		if err := checkWord("completion word", w); err != nil {
			return err
		}
	}
	return nil
}

// checkWord says whether s, a kind of name, is safe to put in the shell
// completions and the manual unquoted.
//
//go:noinline
func checkWord(kind, s string) error {
	if s == "" || s[0] == '-' {
		return badWord(kind, s)
	}
	for _, r := range s {
		if !(r == '-' || r == '_' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9') {
			return badWord(kind, s)
		}
	}
	return nil
}

//go:noinline
func badWord(kind, s string) error {
	return fmt.Errorf("clidoc: %s %q: want letters, digits, '-' and '_' only", kind, s)
}

// flagSpellings returns "--name" and, if any, "-s".
//
// Not inlined: one copy for its many callers keeps binfmtctl small.
//
//go:noinline
func flagSpellings(f Flag) []string {
	s := []string{"--" + f.Name}
	if f.Short != "" {
		s = append(s, "-"+f.Short)
	}
	return s
}

// valueFlags returns the spellings of the flags in fs that take a value.
func valueFlags(fs []Flag) []string {
	var out []string
	for _, f := range fs {
		if f.Arg != "" {
			out = append(out, flagSpellings(f)...)
		}
	}
	return out
}

func firstLine(s string) string {
	s, _, _ = strings.Cut(s, "\n")
	return s
}

// Missing lists the commands and flags of p that do not appear in out,
// the output of WriteManual (format "man") or of WriteCompletion (format
// a shell's name). Tests call it to prove that a program's manual and
// completions cover its whole command table.
func (p *Program) Missing(out, format string) []string {
	if format == "man" {
		out = strings.ReplaceAll(out, `\-`, "-")
		for _, font := range []string{`\fB`, `\fI`, `\fR`} {
			out = strings.ReplaceAll(out, font, " ")
		}
	}
	var missing []string
	want := func(what, s string) {
		if !containsWord(out, s) {
			missing = append(missing, what+" "+s)
		}
	}
	flags := func(fs []Flag) {
		for _, f := range fs {
			if format == "fish" {
				// fish spells flags "-l name" and "-s x".
				want("flag", "-l "+f.Name)
				if f.Short != "" {
					want("flag", "-s "+f.Short)
				}
				continue
			}
			want("flag", "--"+f.Name)
			if f.Short != "" {
				want("flag", "-"+f.Short)
			}
		}
	}
	flags(p.Flags)
	for _, c := range p.Commands {
		want("command", c.Name)
		flags(c.Flags)
	}
	return missing
}

// containsWord reports whether s occurs in out with no letter, digit or
// '-' on either side, so that "--root" is not found in "--rootless".
func containsWord(out, s string) bool {
	isWord := func(b byte) bool {
		return b == '-' || b == '_' || b >= 'a' && b <= 'z' || b >= 'A' && b <= 'Z' || b >= '0' && b <= '9'
	}
	for i := 0; ; {
		j := strings.Index(out[i:], s)
		if j < 0 {
			return false
		}
		j += i
		end := j + len(s)
		if (j == 0 || !isWord(out[j-1])) && (end == len(out) || !isWord(out[end])) {
			return true
		}
		i = j + 1
	}
}
