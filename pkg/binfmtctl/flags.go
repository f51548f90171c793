package binfmtctl

import (
	"strconv"
	"strings"
)

// flagSet parses the GNU-style flags binfmtctl takes: --name=value,
// --name value, -h, and "--" to end the flags. It is pflag's syntax for
// the two kinds of flag binfmtctl has, strings and booleans.
//
// binfmtctl does not link pflag because it runs in every rpm transaction
// that touches binfmt_misc, and pflag's imports (net, flag, encoding/csv
// and more) are initialised at every start-up: about a millisecond of a
// registration that systemd-binfmt does in 14 (docs/benchmarks.md).
type flagSet struct {
	// interspersed lets flags follow arguments; when false, the first
	// argument ends the flags, as the top level needs so that a
	// subcommand's flags reach the subcommand.
	interspersed bool
	flags        []*flagDef
	args         []string
}

type flagDef struct {
	name, short, usage string
	arg                string // a string flag's value name, "DIR"
	def                string // shown in the usage when not empty
	str                *string
	b                  *bool
}

// String defines a string flag stored in p, set to def now. arg names
// its value in the usage, the manual and the completions ("DIR").
//
// Not inlined: every command defines its flags with it.
//
//go:noinline
func (f *flagSet) String(p *string, name, arg, def, usage string) {
	*p = def
	f.flags = append(f.flags, &flagDef{name: name, arg: arg, usage: usage, def: def, str: p})
}

// Bool defines a boolean flag stored in p, set to false now. short is its
// one-letter form, or "".
//
// Not inlined: every command defines its flags with it.
//
//go:noinline
func (f *flagSet) Bool(p *bool, name, short, usage string) {
	*p = false
	f.flags = append(f.flags, &flagDef{name: name, short: short, usage: usage, b: p})
}

func (f *flagSet) lookup(name string, short bool) *flagDef {
	for _, d := range f.flags {
		if (!short && d.name == name) || (short && d.short != "" && d.short == name) {
			return d
		}
	}
	return nil
}

// Parse parses args. The arguments that are not flags are left in Args.
func (f *flagSet) Parse(args []string) error {
	f.args = nil
	for i := 0; i < len(args); i++ {
		a := args[i]
		switch {
		case a == "--":
			f.args = append(f.args, args[i+1:]...)
			return nil
		case len(a) < 2 || a[0] != '-':
			if !f.interspersed {
				f.args = append(f.args, args[i:]...)
				return nil
			}
			f.args = append(f.args, a)
			continue
		}
		short := a[1] != '-'
		if strings.HasPrefix(a, "---") {
			return errorf("bad flag syntax: %s", a)
		}
		name, value, hasValue := strings.Cut(strings.TrimLeft(a, "-"), "=")
		d := f.lookup(name, short)
		switch {
		case d == nil && short:
			return errorf("unknown shorthand flag: %q in %s", name, a)
		case d == nil:
			return errorf("unknown flag: --%s", name)
		case d.b != nil && hasValue:
			v, err := strconv.ParseBool(value)
			if err != nil {
				return errorf("invalid argument %q for %q flag: want true or false", value, a)
			}
			*d.b = v
		case d.b != nil:
			*d.b = true
		case hasValue:
			*d.str = value
		case i+1 < len(args):
			i++
			*d.str = args[i]
		default:
			return errorf("flag needs an argument: %s", a)
		}
	}
	return nil
}

// Args returns the arguments left after the flags.
func (f *flagSet) Args() []string { return f.args }

// Usages lists the flags, one per line, in the order they were defined.
func (f *flagSet) Usages() string {
	cols := make([]string, len(f.flags))
	width := 0
	for i, d := range f.flags {
		s := "      --" + d.name
		if d.short != "" {
			s = "  -" + d.short + ", --" + d.name
		}
		if d.str != nil {
			s += " " + d.arg
		}
		cols[i] = s
		width = max(width, len(s))
	}
	var b strings.Builder
	for i, d := range f.flags {
		// One write a line: each of the Builder's writes is inlined.
		line := cols[i] + strings.Repeat(" ", width-len(cols[i])+3) + d.usage
		if d.def != "" {
			line += " (default " + strconv.Quote(d.def) + ")"
		}
		b.WriteString(line + "\n")
	}
	return b.String()
}
