package binfmtctl

import "io"

// SetTriggerStdin makes r the trigger's standard input until the returned
// function is called.
func SetTriggerStdin(r io.Reader) func() {
	old := triggerStdin
	triggerStdin = r
	return func() { triggerStdin = old }
}
