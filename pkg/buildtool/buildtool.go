package buildtool

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"strings"

	"github.com/spf13/pflag"

	"github.com/qemu-user-static-go/qemu-user-static-go/pkg/assemble"
	"github.com/qemu-user-static-go/qemu-user-static-go/pkg/clidoc"
	"github.com/qemu-user-static-go/qemu-user-static-go/pkg/inspect"
	"github.com/qemu-user-static-go/qemu-user-static-go/pkg/qemu"
)

// Version is stamped at build time with -ldflags "-X"; when it is empty
// the version comes from the binary's build information.
var Version = ""

// Exit codes.
const (
	exitOK    = 0
	exitFail  = 1 // the command ran and failed, or lint found problems
	exitUsage = 2 // the command line was wrong
)

const program = "qemu-user-static-go"

// command is one subcommand. define declares its flags on fs and returns
// what runs it once they are parsed; help, the manual page and the parser
// all read the same definitions.
type command struct {
	name, args, summary string
	define              func(fs *pflag.FlagSet) action
	complete            clidoc.Completion // what the arguments complete to
}

// action runs a subcommand whose flags are parsed into fs.
type action func(fs *pflag.FlagSet, stdout, stderr io.Writer) int

func commands() []command {
	return []command{
		{"build", "", "build the qemu-user-static-go rpm and the binfmtctl one; the last line printed is its path", defineBuild, clidoc.Completion{}},
		{"inspect", "FILE.rpm", "show an rpm's identity, digests, scriptlets and binfmt entries, and lint them", defineInspect,
			clidoc.Completion{Files: true, FirstOnly: true}},
		{"conf", "", "write the binfmt.d files the package ships", defineConf, clidoc.Completion{}},
		{"help", "[COMMAND]", "show the help of " + program + " or of a command", defineHelp,
			clidoc.Completion{Commands: true, FirstOnly: true}},
		{"manual", "", "print the manual page " + program + "(1) as roff (man -l - reads it)", defineManual, clidoc.Completion{}},
		{"completion", "bash|zsh|fish", "print the shell completion script for bash, zsh or fish", defineCompletion,
			clidoc.Completion{Words: clidoc.Shells, FirstOnly: true}},
	}
}

func lookup(name string) (command, bool) {
	for _, c := range commands() {
		if c.name == name {
			return c, true
		}
	}
	return command{}, false
}

func commandNames() []string {
	var names []string
	for _, c := range commands() {
		names = append(names, c.name)
	}
	return names
}

// Run runs the command line args (without the program name) and returns
// the exit code.
func Run(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		usage(stderr)
		return exitUsage
	}
	switch args[0] {
	case "-h", "--help":
		usage(stdout)
		return exitOK
	case "--version":
		fmt.Fprintf(stdout, "%s %s\n", program, version())
		return exitOK
	}
	if strings.HasPrefix(args[0], "-") {
		fmt.Fprintf(stderr, "%s: unknown flag %q before the command (the global flags are --help and --version)\nRun '%s --help' for the commands.\n", program, args[0], program)
		return exitUsage
	}
	c, ok := lookup(args[0])
	if !ok {
		unknownCommand(stderr, args[0])
		return exitUsage
	}
	fs, act := flagSet(c)
	if code, done := parse(fs, c, args[1:], stdout, stderr); done {
		return code
	}
	return act(fs, stdout, stderr)
}

func unknownCommand(stderr io.Writer, name string) {
	msg := fmt.Sprintf("%s: unknown command %q", program, name)
	if s := closest(name, commandNames()); s != "" {
		msg += fmt.Sprintf("; did you mean %q?", s)
	}
	fmt.Fprintln(stderr, msg)
	fmt.Fprintf(stderr, "Run '%s --help' for the commands.\n", program)
}

func defineHelp(*pflag.FlagSet) action {
	return func(fs *pflag.FlagSet, stdout, stderr io.Writer) int { return help(fs.Args(), stdout, stderr) }
}

// help prints the usage, or a command's, to stdout.
func help(args []string, stdout, stderr io.Writer) int {
	switch len(args) {
	case 0:
		usage(stdout)
		return exitOK
	case 1:
		c, ok := lookup(args[0])
		if !ok {
			unknownCommand(stderr, args[0])
			return exitUsage
		}
		fs, _ := flagSet(c)
		commandUsage(stdout, fs, c)
		return exitOK
	}
	fmt.Fprintf(stderr, "%s help: want at most one COMMAND, got %q\n", program, args)
	return exitUsage
}

func usage(w io.Writer) {
	fmt.Fprintf(w, "usage: %s COMMAND [flags]\n       %s --version\n\n", program, program)
	for _, c := range commands() {
		fmt.Fprintf(w, "  %-11s %s\n", c.name, c.summary)
	}
	fmt.Fprintf(w, "\nRun '%s help COMMAND' for its flags.\n", program)
}

func commandUsage(w io.Writer, fs *pflag.FlagSet, c command) {
	line := program + " " + c.name
	own := false
	fs.VisitAll(func(f *pflag.Flag) { own = own || f.Name != "help" })
	if own {
		line += " [flags]"
	}
	if c.args != "" {
		line += " " + c.args
	}
	fmt.Fprintf(w, "usage: %s\n\n%s\n\nflags:\n%s", line, c.summary, fs.FlagUsages())
}

// flagSet returns c's flags, with -h/--help, and its action.
func flagSet(c command) (*pflag.FlagSet, action) {
	fs := pflag.NewFlagSet(c.name, pflag.ContinueOnError)
	act := c.define(fs)
	fs.BoolP("help", "h", false, "show help")
	return fs, act
}

// parse parses a subcommand's flags; done is true when the caller should
// return code (help was asked for, or the flags were wrong).
func parse(fs *pflag.FlagSet, c command, args []string, stdout, stderr io.Writer) (code int, done bool) {
	// pflag prints its own usage on errors; the error line below and a
	// pointer to the help say the same in fewer lines.
	fs.SetOutput(io.Discard)
	fs.Usage = func() {}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, pflag.ErrHelp) {
			commandUsage(stdout, fs, c)
			return exitOK, true
		}
		fmt.Fprintf(stderr, "%s %s: %v\nRun '%s help %s' for its flags.\n", program, c.name, err, program, c.name)
		return exitUsage, true
	}
	if h, _ := fs.GetBool("help"); h {
		commandUsage(stdout, fs, c)
		return exitOK, true
	}
	return 0, false
}

// version is Version, or else the module version or the commit the binary
// was built from, as the go command records them.
func version() string {
	if Version != "" {
		return Version
	}
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return "devel"
	}
	if v := bi.Main.Version; v != "" && v != "(devel)" {
		return v
	}
	var rev, dirty string
	for _, s := range bi.Settings {
		switch s.Key {
		case "vcs.revision":
			rev = s.Value
		case "vcs.modified":
			if s.Value == "true" {
				dirty = "-dirty"
			}
		}
	}
	if rev == "" {
		return "devel"
	}
	if len(rev) > 12 {
		rev = rev[:12]
	}
	return "devel-" + rev + dirty
}

func defineBuild(fs *pflag.FlagSet) action {
	var o assemble.Options
	var quiet bool
	fs.StringVar(&o.QemuDir, "qemu-dir", qemu.DefaultBinDir, "directory of the qemu-<cpu><suffix> interpreters; they must be static (or static-pie)")
	suffix := fs.String("qemu-suffix", assemble.DefaultQemuSuffix, "suffix of the interpreters' names in --qemu-dir, as qemu-binfmt-conf.sh's; '' for Debian 13's qemu-user (the package installs them as qemu-<cpu>-static)")
	fs.StringSliceVar(&o.CPUs, "cpus", nil, "comma-separated targets to package (default: every target with an interpreter, except the host family's)")
	fs.StringVar(&o.Version, "version", assemble.DefaultVersion, "package version")
	fs.StringVar(&o.Release, "release", assemble.DefaultRelease, "package release")
	fs.StringVar(&o.OutputDir, "output", ".", "directory to write the rpm into")
	fs.StringVar(&o.Compression, "compression", assemble.DefaultCompression, "payload compression: "+strings.Join(assemble.Compressions(), ", "))
	fs.StringVar(&o.SignKey, "sign-key", "", "OpenPGP private key to sign with (passphrase from $NFPM_RPM_PASSPHRASE or $NFPM_PASSPHRASE)")
	fs.StringVar(&o.SourceDir, "source-dir", "", "the repository with spec/, scriptlets/ and cmd/binfmtctl (default: found from the working directory)")
	fs.StringVar(&o.Binfmtctl, "binfmtctl", "", "use this binfmtctl instead of building it")
	fs.BoolVar(&o.Preserve, "preserve-argv0", false, "set flag P in the binfmt.d files")
	fs.BoolVar(&o.Credentials, "credentials", false, "set flag C (and so O) in the binfmt.d files; see pkg/qemu for why this is off")
	fs.BoolVarP(&quiet, "quiet", "q", false, "print only the rpms' paths and errors")
	asJSON := fs.Bool("json", false, "print both packages' paths, NEVRAs, sizes and digests as JSON")
	return func(fs *pflag.FlagSet, stdout, stderr io.Writer) int {
		if fs.NArg() > 0 {
			fmt.Fprintf(stderr, "%s build: unexpected arguments %q\n", program, fs.Args())
			return exitUsage
		}
		o.QemuSuffix = suffix
		if err := assemble.CheckOptions(o); err != nil {
			fmt.Fprintf(stderr, "%s build: %v\n", program, err)
			return exitUsage
		}
		if o.SignKey != "" {
			o.SignPassphrase = os.Getenv("NFPM_RPM_PASSPHRASE")
			if o.SignPassphrase == "" {
				o.SignPassphrase = os.Getenv("NFPM_PASSPHRASE")
			}
		}
		progress := newProgressLine(stderr, isTerminal(stderr))
		if !quiet {
			o.Log = stderr
			o.Progress = progress.update
		}
		ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
		defer stop()
		res, err := assemble.Build(ctx, o)
		progress.end()
		if err != nil {
			fmt.Fprintf(stderr, "%s build: %v\n", program, err)
			return exitFail
		}
		if !quiet {
			for _, p := range res.Packages {
				fmt.Fprintf(stderr, "wrote %s: %d bytes, sha256 %s\n", p.NEVRA, p.Size, p.SHA256)
			}
		}
		if *asJSON {
			enc := json.NewEncoder(stdout)
			enc.SetIndent("", "  ")
			if err := enc.Encode(res); err != nil {
				fmt.Fprintf(stderr, "%s build: %v\n", program, err)
				return exitFail
			}
			return exitOK
		}
		// One path a line, qemu-user-static-go's last: scripts that take
		// the last line keep getting it.
		for _, p := range res.Packages {
			fmt.Fprintln(stdout, p.Path)
		}
		return exitOK
	}
}

func defineInspect(fs *pflag.FlagSet) action {
	asJSON := fs.Bool("json", false, "print the report as JSON")
	host := fs.String("host", "", "architecture of the machine the package would be installed on, for the host-family lint (default: the package's architecture; this machine's for noarch)")
	keyring := fs.String("keyring", "", "OpenPGP public keys to verify signatures with (default: only report the signing key ids)")
	return func(fs *pflag.FlagSet, stdout, stderr io.Writer) int {
		if fs.NArg() != 1 {
			fmt.Fprintf(stderr, "%s inspect: want exactly one FILE.rpm\n", program)
			return exitUsage
		}
		opts := inspect.Options{Host: *host, DefaultHost: runtime.GOARCH}
		if *keyring != "" {
			keys, err := inspect.ReadKeyring(*keyring)
			if err != nil {
				fmt.Fprintf(stderr, "%s inspect: %v\n", program, err)
				return exitFail
			}
			opts.Keyring = keys
		}
		rep, err := inspect.File(fs.Arg(0), opts)
		if err != nil {
			fmt.Fprintf(stderr, "%s inspect: %v\n", program, err)
			return exitFail
		}
		if *asJSON {
			enc := json.NewEncoder(stdout)
			enc.SetIndent("", "  ")
			if err := enc.Encode(rep); err != nil {
				fmt.Fprintf(stderr, "%s inspect: %v\n", program, err)
				return exitFail
			}
		} else {
			rep.WriteText(stdout)
		}
		if probs := rep.Errors(); len(probs) > 0 {
			for _, p := range probs {
				fmt.Fprintf(stderr, "%s: %s\n", fs.Arg(0), p)
			}
			return exitFail
		}
		return exitOK
	}
}

func defineConf(fs *pflag.FlagSet) action {
	cpus := fs.StringSlice("cpus", nil, "comma-separated targets (default: every target but the host family's); naming one of the host family includes it, naming the host's own cpu is an error")
	host := fs.String("host", runtime.GOARCH, "architecture of the machine the files are for (GOARCH or uname -m)")
	out := fs.String("output", "", "existing directory to write qemu-<cpu>-static.conf files into (default: print them)")
	var o qemu.Options
	fs.StringVar(&o.BinDir, "bindir", qemu.DefaultBinDir, "directory of the interpreters on the target machine")
	fs.BoolVar(&o.Preserve, "preserve-argv0", false, "set flag P")
	fs.BoolVar(&o.Credentials, "credentials", false, "set flag C (and so O); see pkg/qemu for why this is off")
	return func(fs *pflag.FlagSet, stdout, stderr io.Writer) int {
		if fs.NArg() > 0 {
			fmt.Fprintf(stderr, "%s conf: unexpected arguments %q\n", program, fs.Args())
			return exitUsage
		}
		o.IncludeHostFamily = len(*cpus) > 0
		// Generate reads no file: whatever it refuses (an unknown or
		// the host's own cpu, an empty host, a bindir that cannot be
		// written in a register string) came from the command line.
		confs, err := qemu.Generate(*cpus, *host, o)
		if err != nil {
			fmt.Fprintf(stderr, "%s conf: %v\n", program, err)
			return exitUsage
		}
		if *out != "" {
			// A typo in the directory should not create a tree of its
			// own; the files go only where a directory is already.
			if st, err := os.Stat(*out); err != nil {
				fmt.Fprintf(stderr, "%s conf: output directory: %v\n", program, err)
				return exitFail
			} else if !st.IsDir() {
				fmt.Fprintf(stderr, "%s conf: output directory %q is not a directory\n", program, *out)
				return exitFail
			}
		}
		for _, c := range confs {
			if *out == "" {
				fmt.Fprintf(stdout, "# %s\n%s", c.Name, c.Data)
				continue
			}
			p := filepath.Join(*out, c.Name)
			if err := os.WriteFile(p, c.Data, 0o644); err != nil {
				fmt.Fprintf(stderr, "%s conf: %v\n", program, err)
				return exitFail
			}
			fmt.Fprintln(stdout, p)
		}
		return exitOK
	}
}
