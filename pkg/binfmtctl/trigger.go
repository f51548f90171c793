package binfmtctl

import (
	"bufio"
	"io"
	"os"
	"strconv"

	"github.com/qemu-user-static-go/qemu-user-static-go/pkg/lifecycle"
)

// triggerStdin is where rpm writes a file trigger's file list.
var triggerStdin io.Reader = os.Stdin

// maxTriggerFiles bounds the file list read from rpm: a transaction that
// installs more binfmt.d files than this is not one any package makes.
const maxTriggerFiles = 100000

// runTrigger runs one step of the helper's rpm file triggers:
//
//	binfmtctl trigger STEP PID [FILE...]
//	binfmtctl trigger STEP PID < files
//
// STEP is leaving, removing, early, guard-before or guard-after; PID is the rpm
// process running the transaction, the trigger shell's $PPID, or "-" for
// binfmtctl's parent (a Lua trigger's rpm.execute). The files are the
// arguments after PID: a Lua trigger reads them with rpm.next_file and
// passes them so, with no shell in between. Without any, a numeric PID
// (a shell trigger's, as older packages' bodies run it) reads them from
// standard input, one path a line, as rpm writes them there; with "-"
// standard input is rpm's own (a terminal, perhaps), never a file list,
// and is not read. Like the hooks, a trigger never fails the
// transaction: what it could not do is said on stderr, and the exit code
// is 1.
func runTrigger(c *ctx, args []string) int {
	if len(args) < 2 {
		c.errorf("trigger: want STEP PID [FILE...] (usage: binfmtctl trigger leaving|removing|early|guard-before|guard-after PID [FILE...])")
		return exitUsage
	}
	var pid int
	var err error
	if args[1] == "-" {
		// A Lua trigger runs binfmtctl with rpm.execute: rpm itself is
		// the parent.
		pid = os.Getppid()
	} else if pid, err = strconv.Atoi(args[1]); err != nil {
		c.errorf("trigger: PID %q is not a number (or - for the parent process)", args[1])
		return exitUsage
	}
	switch args[0] {
	case lifecycle.StepLeaving, lifecycle.StepRemoving, lifecycle.StepEarly, lifecycle.StepGuardBefore, lifecycle.StepGuardAfter:
	default:
		c.errorf("trigger: unknown step %q, want leaving, removing, early, guard-before or guard-after", args[0])
		return exitUsage
	}
	tx, err := lifecycle.TxID("/proc", pid)
	if err != nil {
		c.errorf("trigger %s: %v", args[0], err)
		return exitFail
	}
	files := args[2:]
	if len(files) > maxTriggerFiles {
		files = files[:maxTriggerFiles]
	}
	if len(files) == 0 && args[1] != "-" {
		sc := bufio.NewScanner(triggerStdin)
		for sc.Scan() && len(files) < maxTriggerFiles {
			files = append(files, sc.Text())
		}
	}
	if err := c.manager().Trigger(args[0], tx, files); err != nil {
		c.errorf("%v", err)
		return exitFail
	}
	return exitOK
}
