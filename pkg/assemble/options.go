package assemble

import "errors"

// ErrOption is wrapped by CheckOptions' errors: the options themselves are
// wrong, whatever is on the machine, so a command line reports a usage
// error.
var ErrOption = errors.New("invalid option")

// CheckOptions checks what Build would refuse without looking at any file:
// the compression, the names of the cpus, the version, the release and the
// interpreters' suffix. Every error wraps ErrOption (and qemu.ErrUnknownCPU
// for an unknown cpu), and names the value.
func CheckOptions(o Options) error {
	wrap := func(err error) error {
		if err == nil {
			return nil
		}
		return &optionError{err}
	}
	if _, err := parseCompression(o.Compression); err != nil {
		return wrap(err)
	}
	if err := checkCPUNames(o.CPUs); err != nil {
		return wrap(err)
	}
	if err := checkVersion("version", or(o.Version, DefaultVersion)); err != nil {
		return wrap(err)
	}
	if err := checkVersion("release", or(o.Release, DefaultRelease)); err != nil {
		return wrap(err)
	}
	if o.QemuSuffix != nil {
		if err := checkSuffix(*o.QemuSuffix); err != nil {
			return wrap(err)
		}
	}
	return nil
}

// optionError is an error of CheckOptions: its text is the cause's, and it
// is both ErrOption and the cause.
type optionError struct{ err error }

func (e *optionError) Error() string   { return e.err.Error() }
func (e *optionError) Unwrap() []error { return []error{ErrOption, e.err} }
