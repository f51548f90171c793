package buildtool

import (
	"fmt"
	"io"
	"runtime"
	"strings"

	"github.com/spf13/pflag"

	"github.com/qemu-user-static-go/qemu-user-static-go/pkg/assemble"
	"github.com/qemu-user-static-go/qemu-user-static-go/pkg/clidoc"
	"github.com/qemu-user-static-go/qemu-user-static-go/pkg/qemu"
)

// Manual writes the manual page qemu-user-static-go(1) as roff. It is
// made from the flag definitions the parser reads, so it lists exactly
// the commands and flags the tool accepts.
func Manual(w io.Writer) error { return describe().WriteManual(w) }

// Completion writes the tool's completion script for shell: "bash", "zsh"
// or "fish", made like the manual from the parser's definitions.
func Completion(w io.Writer, shell string) error { return describe().WriteCompletion(w, shell) }

func defineManual(*pflag.FlagSet) action {
	return func(fs *pflag.FlagSet, stdout, stderr io.Writer) int {
		if fs.NArg() > 0 {
			fmt.Fprintf(stderr, "%s manual: unexpected arguments %q\n", program, fs.Args())
			return exitUsage
		}
		if err := Manual(stdout); err != nil {
			fmt.Fprintf(stderr, "%s manual: %v\n", program, err)
			return exitFail
		}
		return exitOK
	}
}

func defineCompletion(*pflag.FlagSet) action {
	return func(fs *pflag.FlagSet, stdout, stderr io.Writer) int {
		if fs.NArg() != 1 || !contains(clidoc.Shells, fs.Arg(0)) {
			fmt.Fprintf(stderr, "%s completion: want one shell of %s, got %q\n", program, strings.Join(clidoc.Shells, ", "), fs.Args())
			return exitUsage
		}
		if err := Completion(stdout, fs.Arg(0)); err != nil {
			fmt.Fprintf(stderr, "%s completion: %v\n", program, err)
			return exitFail
		}
		return exitOK
	}
}

func contains(list []string, s string) bool {
	for _, l := range list {
		if l == s {
			return true
		}
	}
	return false
}

// flagArgs names the values of the flags that take one, for the manual,
// and says what they complete to. A flag missing here is still listed,
// with its type for a name.
var flagArgs = map[string]clidoc.Flag{
	"qemu-dir":    {Arg: "DIR", Complete: clidoc.Completion{Dirs: true}},
	"qemu-suffix": {Arg: "SUFFIX"},
	"cpus":        {Arg: "LIST", Complete: clidoc.Completion{Words: qemu.CPUs()}},
	"version":     {Arg: "VERSION"},
	"release":     {Arg: "RELEASE"},
	"output":      {Arg: "DIR", Complete: clidoc.Completion{Dirs: true}},
	"compression": {Arg: "ALGO", Complete: clidoc.Completion{Words: compressionWords()}},
	"sign-key":    {Arg: "FILE", Complete: clidoc.Completion{Files: true}},
	"source-dir":  {Arg: "DIR", Complete: clidoc.Completion{Dirs: true}},
	"binfmtctl":   {Arg: "FILE", Complete: clidoc.Completion{Files: true}},
	"host":        {Arg: "ARCH"},
	"keyring":     {Arg: "FILE", Complete: clidoc.Completion{Files: true}},
	"bindir":      {Arg: "DIR"},
}

// compressionWords are the --compression values without their level
// forms ("gzip[:1-9]" is "gzip").
func compressionWords() []string {
	var out []string
	for _, c := range assemble.Compressions() {
		c, _, _ = strings.Cut(c, "[")
		out = append(out, c)
	}
	return out
}

// docFlags describes fs's flags for clidoc, leaving out -h/--help, which
// the program's flags hold once for every command.
func docFlags(fs *pflag.FlagSet) []clidoc.Flag {
	var out []clidoc.Flag
	fs.VisitAll(func(f *pflag.Flag) {
		if f.Name == "help" {
			return
		}
		d := flagArgs[f.Name]
		d.Name, d.Short, d.Usage = f.Name, f.Shorthand, f.Usage
		if f.Value.Type() == "bool" {
			d.Arg, d.Complete = "", clidoc.Completion{}
		} else {
			if d.Arg == "" {
				d.Arg = strings.ToUpper(f.Value.Type())
			}
			switch f.DefValue {
			case "", "[]":
			default:
				d.Default = f.DefValue
			}
			if f.DefValue == runtime.GOARCH {
				// The default is the machine the tool runs on; the
				// manual should not depend on where it was made.
				d.Default = "this machine's"
			}
		}
		out = append(out, d)
	})
	return out
}

// describe describes the tool for clidoc, from the same command table and
// flag definitions that the parser reads.
func describe() *clidoc.Program {
	p := &clidoc.Program{
		Name:    program,
		Section: "1",
		Version: version(),
		Summary: "build the qemu-user-static-go rpm, inspect rpm packages that ship binfmt.d files, write binfmt.d files",
		Synopsis: []string{
			"COMMAND [FLAGS] [ARGS]",
			"--version",
		},
		Description: `qemu-user-static-go builds an rpm of qemu's static user-mode
interpreters whose binfmt_misc entries follow the package: its scriptlets
call binfmtctl(8), which registers exactly the package's own entries and
removes exactly those.

build packages every interpreter found in --qemu-dir (except those the
host runs natively), or those named by --cpus. The interpreters must be
static: the entries have flag F, which runs them inside foreign chroots
that have none of the host's libraries. On a terminal build shows how far
the payload is on one line; elsewhere it prints a line a quarter. The last
line it prints on standard output is the path of the package.

inspect reads any rpm and lints how it handles binfmt_misc: a package that
registers entries and never unregisters them is an error.

--version prints the tool's version (given before any command; build's
--version is the package's).`,
		Flags: []clidoc.Flag{{Name: "help", Short: "h", Usage: "show the help of the program, or of the command it follows"}},
		Sections: []clidoc.Section{
			{Title: "EXIT STATUS", Body: `  0  success
  1  the command ran and failed (a lint problem included)
  2  the command line was wrong`},
			{Title: "ENVIRONMENT", Body: `  SOURCE_DATE_EPOCH  the time of the package's files and of the build (default: the last git commit's)
  NFPM_RPM_PASSPHRASE, NFPM_PASSPHRASE  the passphrase of --sign-key`},
			{Title: "SEE ALSO", Body: `binfmtctl(8), binfmt.d(5), systemd-binfmt(8), rpm(8)`},
		},
	}
	for _, c := range commands() {
		fs, _ := flagSet(c)
		p.Commands = append(p.Commands, clidoc.Command{
			Name:     c.name,
			Args:     c.args,
			Summary:  c.summary,
			Flags:    docFlags(fs),
			Complete: c.complete,
		})
	}
	return p
}
