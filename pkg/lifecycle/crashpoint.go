//go:build !crashpoint

package lifecycle

// crashPoint marks a place in a hook where the process may die (power
// loss, OOM killer, SIGKILL) and a rerun of the same hook must still
// converge. In normal builds it does nothing and costs nothing. A build
// with -tags crashpoint kills the process there on request
// (crashpoint_inject.go), which is how the tests prove the order of kernel
// writes and record updates.
func crashPoint(name string) {}
