package binfmtctl

import (
	_ "embed"
	"io"
	"strings"

	"github.com/qemu-user-static-go/qemu-user-static-go/pkg/binfmt"
	"github.com/qemu-user-static-go/qemu-user-static-go/pkg/clidoc"
)

// The manual page and the completion scripts are rendered from the
// command table by clidoc (program, below) into docs/, and embedded: the
// helper prints them without linking clidoc's renderers, some 60 KB of a
// binary that is kept small. TestEmbeddedDocs fails when a file in docs/
// differs from what the table renders now, and UPDATE_DOCS=1 makes it
// write them (make binfmtctl-docs-update).
//
//go:embed docs/binfmtctl.8
var manualPage string

//go:embed docs/binfmtctl.bash
var bashCompletion string

//go:embed docs/_binfmtctl
var zshCompletion string

//go:embed docs/binfmtctl.fish
var fishCompletion string

// versionMark stands for Version in the rendered manual page, which is
// rendered once, at development time, while Version is set at link time.
const versionMark = "@VERSION@"

// Manual writes the manual page binfmtctl(8) as roff. It is made from
// the command table the parser reads, so it lists exactly the commands
// and flags binfmtctl accepts.
func Manual(w io.Writer) error {
	_, err := io.WriteString(w, strings.ReplaceAll(manualPage, versionMark, clidoc.RoffQuoted(Version)))
	return err
}

// Completion writes binfmtctl's completion script for shell: "bash",
// "zsh" or "fish". Like the manual, it is made from the command table.
func Completion(w io.Writer, shell string) error {
	var script string
	switch shell {
	case "bash":
		script = bashCompletion
	case "zsh":
		script = zshCompletion
	case "fish":
		script = fishCompletion
	default:
		return errorf("no completion for shell %q: want one of %s", shell, strings.Join(clidoc.Shells, ", "))
	}
	_, err := io.WriteString(w, script)
	return err
}

// docFlags turns a flagSet's definitions into clidoc's. A value named
// DIR completes to directories, FILE to files.
func docFlags(fs *flagSet) []clidoc.Flag {
	out := make([]clidoc.Flag, 0, len(fs.flags))
	for _, d := range fs.flags {
		f := clidoc.Flag{Name: d.name, Short: d.short, Usage: d.usage, Default: d.def, Arg: d.arg}
		switch d.arg {
		case "DIR":
			f.Complete.Dirs = true
		case "FILE":
			f.Complete.Files = true
		}
		out = append(out, f)
	}
	return out
}

// program describes binfmtctl for clidoc. It is built when asked for,
// not at start-up.
func program() *clidoc.Program {
	top := &flagSet{}
	var g globals
	var help, version bool
	topFlags(top, &g, &help, &version)
	p := &clidoc.Program{
		Name:     "binfmtctl",
		Section:  "8",
		Version:  Version,
		Summary:  "manage binfmt_misc entries one at a time, following the packages that ship them",
		Synopsis: []string{"[--binfmt-dir DIR] [--root DIR] [--state-dir DIR] COMMAND [FLAGS] [ARGS]"},
		Description: `binfmtctl registers, unregisters and reports binfmt_misc entries one at a
time. Unlike systemd-binfmt, it never flushes the table: entries of other
tools stay untouched.

The hook command runs from rpm scriptlets: it registers the entries a
package's binfmt.d files define when the package is installed, and removes
exactly those when it is erased. It keeps a record of what each package
registered in the state directory.

register, hook and sync refuse an entry that would match the host's own
programs (binfmtctl itself, /bin/sh, the host's ELF forms) or its own
interpreter file: such an entry would make every exec loop. register
--force overrides this for a person; the hooks never do.`,
		Flags: docFlags(top),
		Sections: []clidoc.Section{
			{Title: "EXIT STATUS", Body: `  0  success
  1  something failed, a partial failure included
  2  the command line was wrong`},
			{Title: "FILES", Body: `  ` + binfmt.DefaultDir + `  the binfmt_misc mount
  /etc/binfmt.d, /run/binfmt.d, /usr/local/lib/binfmt.d, /usr/lib/binfmt.d  binfmt.d files, in systemd's order of precedence
  /var/lib/binfmtctl  the record of what each package registered`},
			{Title: "SEE ALSO", Body: `systemd-binfmt(8), binfmt.d(5), rpm(8)`},
		},
	}
	for _, cmd := range commands {
		fs := &flagSet{}
		if cmd.flags != nil {
			cmd.flags(fs, &ctx{})
		}
		p.Commands = append(p.Commands, clidoc.Command{
			Name:     cmd.name,
			Args:     cmd.args,
			Summary:  cmd.summary,
			Flags:    docFlags(fs),
			Complete: cmd.complete,
		})
	}
	return p
}
