package lifecycle

import (
	"errors"
	"io"
	"os"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/qemu-user-static-go/qemu-user-static-go/pkg/binfmt"
)

// The erase guard (docs/lifecycle.md, "The erase guard"): when the erase
// of a package that ships /usr/bin/binfmtctl may leave no helper behind,
// nothing of binfmtctl runs after systemd's binfmt trigger in that
// transaction. rpm runs %transfiletriggerin only of packages installed
// once the transaction is over, and the erased package's own %preun and
// %postun run before it. So the erase %preun starts a detached copy of
// the helper that waits for the transaction to end and then puts back
// what systemd-binfmt flushed.

// HelperPath is the helper every package that ships it installs there.
const HelperPath = "/usr/bin/binfmtctl"

// PhaseAfterErase is the hidden hook phase the detached copy runs.
const PhaseAfterErase Phase = "after-erase"

// DefaultEraseGuardTimeout bounds the detached copy's wait for the end of
// the transaction. A big transaction (a distribution upgrade) may still
// run long after the erase; past the bound the copy gives up, touches
// nothing, and says so in its log: a flush after that takes for good
// what no binfmt.d file defines.
const DefaultEraseGuardTimeout = 30 * time.Minute

// EraseGuardLog, in the transaction state directory (/run/binfmtctl), is
// where the detached copy, which has no terminal and no rpm output to
// write to, says what it did. Every copy holds a shared flock on it for
// its whole life, so an exclusive one is granted once none is running
// (`flock /run/binfmtctl/erase-guard.log true` waits for them).
const EraseGuardLog = "erase-guard.log"

// defaultRPMLock is rpm's transaction lock when %_rpmlock_path does not
// expand (rpm's RPMLOCK_PATH, LOCALSTATEDIR "/rpm/.rpm.lock").
const defaultRPMLock = "/var/lib/rpm/.rpm.lock"

// LockPath returns rpm's transaction lock file, %{_rpmlock_path}
// (%{_dbpath}/.rpm.lock by default), as the rpm command expands it. rpm
// takes a write lock (fcntl F_SETLK, whole file) on it for a whole
// transaction, the %transfiletriggerin triggers included, and releases
// it when the transaction is over.
func (r RPM) LockPath() (string, error) {
	cmd := r.command()
	stdout, stderr, err := run(cmd, []string{"--eval", "%{?_rpmlock_path}"})
	if err != nil {
		return "", errorf("asking rpm for %%_rpmlock_path: %v: %s", err, strings.TrimSpace(stderr.String()))
	}
	p := strings.TrimSpace(stdout.String())
	if p == "" || !strings.HasPrefix(p, "/") {
		p = defaultRPMLock
	}
	return p, nil
}

// AtRisk reports whether a flush after the erase could take the live
// entry e for good: no binfmt.d file on disk defines its name with its
// interpreter. systemd-binfmt registers every file again after its flush,
// so an entry a file defines comes back as the file defines it. One that
// a file defines with another interpreter counts: that file may be the
// erased package's own, which goes with it (the hook left the entry live
// because someone else replaced it); where the file stays, the guard
// puts nothing back under a name the file registered again.
func AtRisk(e RawEntry, onDisk map[string]binfmt.Line) bool {
	// A name no file defines has no interpreter: the kernel shows none
	// empty.
	return !strings.Contains(string(e.Raw), "\ninterpreter "+onDisk[e.Name].Interpreter+"\n")
}

// FlushedSince reports whether systemd-binfmt flushed the table between
// the snapshot the erase %preun took and the table now, once the
// transaction is over: no entry of the snapshot is still live as it was
// (the same inode), as none is after its "-1" to status, and some entry
// that a binfmt.d file on disk defines was registered since, as
// systemd-binfmt registers every file after its flush. Anything less is
// not a flush, and nothing is put back: an entry other packages'
// scriptlets unregistered in the transaction (their own, registered
// without a binfmt.d file) is theirs to remove, and the table alone
// cannot tell that from a flush that no file registers anything after.
func FlushedSince(snapshot, now []RawEntry, onDisk map[string]binfmt.Line) bool {
	registered := false
	for _, n := range now {
		for _, e := range snapshot {
			if n.Name == e.Name && n.Ino == e.Ino {
				return false
			}
		}
		_, ok := onDisk[n.Name]
		registered = registered || ok
	}
	return registered
}

// GuardErase is the erase %preun's part of the erase guard, for a package
// that ships the helper (our own %preun says so with --ships-helper; the
// %binfmtctl_preun macro of other packages does not). It runs after the
// hook itself, and starts the detached copy only where it can be needed:
// systemd's binfmt trigger runs here (/run/systemd/system), the table is
// this root's own (not the host's, seen through dnf --installroot), some
// live entry is defined by no binfmt.d file, and an ancestor of this
// process (rpm, dnf, PackageKit: the transaction we are part of) holds
// rpm's transaction lock. Then it snapshots the table, merged with the
// early snapshot the helper's triggers kept in this transaction's state,
// and what the files on disk define, names the entries a flush would
// take for good (flag F with an interpreter that no longer exists), and
// starts exe with args
// (the global flags) and "hook after-erase NEVRA 0", detached: a new
// session, the snapshot on standard input, the guard's log as standard
// output and error (locked shared until it exits), rpm's lock as fd 3.
// It returns at once; what it cannot do it says, and the erase goes on.
func (m *Manager) GuardErase(nevra, exe string, args []string) {
	if !m.systemdRuns() || outerTable(m.BinfmtDir) {
		return
	}
	fs, err := binfmt.Open(m.BinfmtDir)
	if err != nil {
		return // the hook said why already
	}
	st := &TxState{}
	// rpmLock is not closed: the hook exits right after, and it goes
	// with it (close-on-exec, and the copy gets its own).
	rpmLock, lockErr := m.txLock(st)
	// This transaction's state (a fresh one without an id), where the
	// helper's triggers ran in it before: the early snapshot keeps what
	// a scriptlet's restart of systemd-binfmt.service flushed before
	// this %preun (Fedora's %post, which dnf runs first in the swap
	// back), and the files that went before it.
	if t, err := m.txStore().Load(st.ID); err == nil {
		st = t
	}
	if m.takeSnapshot(fs, st, string(Preun)) != nil {
		return
	}
	st.Snapshot = MergeEarly(st.Early, st.Snapshot)
	disk, _ := m.onDisk()
	risk := ""
	for _, e := range st.Snapshot {
		if !AtRisk(e, disk) {
			continue
		}
		if l, err := binfmt.ParseLive(e.Name, e.Raw); err == nil && l.HasFlag('F') && !l.InterpreterExists("/") {
			m.notice("entry %q cannot be registered again if systemd-binfmt flushes the table in this transaction: flag F opens the interpreter %s when registering, and it no longer exists", e.Name, l.Interpreter)
		}
		risk += " " + e.Name
	}
	if risk == "" {
		return
	}
	m.see(st)
	if lockErr == nil {
		lockErr = m.spawnGuard(st, rpmLock, exe, append(args, "hook", string(PhaseAfterErase), nevra, "0"))
	}
	if lockErr != nil {
		m.notice("erase guard: %v; if systemd-binfmt flushes the table in this transaction, nothing of binfmtctl is left to register again:%s", lockErr, risk)
	}
}

// txLock finds rpm's lock and the transaction this process is part of
// (st.ID): rpmLock is the lock file, -1 on error.
func (m *Manager) txLock(st *TxState) (rpmLock int, err error) {
	// The helper's Querier is an RPM; anything else asks the rpm
	// command all the same.
	q, _ := m.RPM.(RPM)
	p, err := q.LockPath()
	if err != nil {
		return -1, err
	}
	p = joinPath(m.Config.Root, p)
	rpmLock, err = openState("rpm lock file", p, unix.O_RDONLY)
	if err != nil {
		return -1, err
	}
	lk := unix.Flock_t{Type: unix.F_RDLCK}
	if err = unix.FcntlFlock(uintptr(rpmLock), unix.F_GETLK, &lk); err != nil || lk.Type != unix.F_WRLCK || !isAncestor(int(lk.Pid)) {
		err = errorf("cannot tell when this transaction ends: no process this one runs in holds rpm's lock %s", p)
	} else {
		st.ID, err = TxID("/proc", int(lk.Pid))
	}
	return rpmLock, err
}

// spawnGuard starts the detached copy.
func (m *Manager) spawnGuard(st *TxState, rpmLock int, exe string, args []string) error {
	// One deferred close for both descriptors (-1 until opened): one
	// defer each costs the helper more.
	log, pipe := -1, [2]int{-1, -1}
	defer func() {
		unix.Close(log)
		unix.Close(pipe[1])
	}()
	dir := m.txStore().Dir
	_ = os.MkdirAll(dir, 0o700)
	if err := checkDir(dir); err != nil {
		return err
	}
	log, err := openState("erase guard log", joinPath(dir, EraseGuardLog), unix.O_WRONLY|unix.O_APPEND|unix.O_CREAT)
	if err != nil {
		return err
	}
	// Shared: every copy holds it; whoever waits for them all takes it
	// exclusive. Not waited for, so that no observer holds up rpm.
	_ = unix.Flock(log, unix.LOCK_SH|unix.LOCK_NB)
	if err := syscall.Pipe2(pipe[:], syscall.O_CLOEXEC); err != nil {
		return err
	}
	closeOnExec()
	_, err = syscall.ForkExec(exe, append([]string{"binfmtctl"}, args...), &syscall.ProcAttr{
		Dir:   "/",
		Env:   os.Environ(),
		Files: []uintptr{uintptr(pipe[0]), uintptr(log), uintptr(log), uintptr(rpmLock)},
		// A session of its own: no terminal, and no signal for dnf's
		// process group reaches it. Not waited for: once this process
		// exits, init reaps it.
		Sys: &syscall.SysProcAttr{Setsid: true},
	})
	unix.Close(pipe[0])
	if err != nil {
		return errorf("starting %s: %w", exe, err)
	}
	// The pipe holds 64 KiB; the copy reads the rest at once.
	state := st.Render()
	for len(state) > 0 {
		n, err := unix.Write(pipe[1], state)
		if err != nil && !errors.Is(err, unix.EINTR) {
			return err
		}
		state = state[max(n, 0):]
	}
	return nil
}

// openState opens p with flags, refusing a symlink in its place, a FIFO
// (O_NONBLOCK: it cannot block the open) and anything but a regular file
// of root's that group and others cannot write (checkFile).
func openState(what, p string, flags int) (int, error) {
	fd, err := unix.Open(p, flags|unix.O_NOFOLLOW|unix.O_NONBLOCK|unix.O_CLOEXEC, 0o600)
	if errors.Is(err, unix.ELOOP) {
		return -1, errorf("%w: %s %q is a symlink", ErrUnsafeState, what, p)
	}
	if err != nil {
		return -1, errorf("opening %s: %w", what, err)
	}
	var st unix.Stat_t
	if err = unix.Fstat(fd, &st); err == nil {
		err = checkFile(what, p, &st)
	}
	if err != nil {
		unix.Close(fd)
		return -1, err
	}
	return fd, nil
}

// isAncestor reports whether pid is a parent of this process, or its
// parent's parent, and so on.
func isAncestor(pid int) bool {
	p := os.Getppid()
	for i := 0; i < 32 && p > 1; i++ {
		if p == pid {
			return true
		}
		p = parentOf(p)
	}
	return false
}

// closeOnExec marks every descriptor above standard error close-on-exec,
// so that the detached copy keeps none that rpm or dnf gave the scriptlet
// (a pipe dnf reads scriptlet output from would never reach end of file).
func closeOnExec() {
	names, _ := readDirNames("/proc/self/fd")
	for _, n := range names {
		if fd, err := strconv.Atoi(n); err == nil && fd > 2 {
			_, _ = unix.FcntlInt(uintptr(fd), unix.F_SETFD, unix.FD_CLOEXEC)
		}
	}
}

// AfterErase is the detached copy's part: state is the snapshot the
// %preun took, rpmLock rpm's lock file. It waits, at most timeout, until
// the transaction is over (a read lock on rpmLock is granted once rpm
// releases its write lock), lets go of the lock at once (holding it would
// hold up the next transaction), and then, unless the helper is on disk
// again (another package kept or installed it; its triggers guarded the
// transaction), puts back what a flush took (PlanAfterErase), under the
// usual lock. What it does goes to m.Notices, one line each, and what
// failed to the error.
func (m *Manager) AfterErase(state io.Reader, rpmLock *os.File, timeout time.Duration) error {
	data, err := io.ReadAll(io.LimitReader(state, maxTxState+1))
	if err != nil {
		return errorf("erase guard: reading the snapshot: %w", err)
	}
	st, err := ParseTxState(data)
	if err != nil {
		return errorf("erase guard: %w", err)
	}
	if timeout <= 0 {
		timeout = DefaultEraseGuardTimeout
	}
	// The bound: F_SETLKW cannot be interrupted here (the Go runtime's
	// signal handlers restart it), so a second goroutine ends the
	// process at the deadline, unless the wait ended first.
	var ended atomic.Int32
	go func() {
		time.Sleep(timeout)
		if ended.CompareAndSwap(0, 1) {
			m.notice("erase guard: gave up after %v, touching nothing: the transaction of process %s is still running; a flush by systemd-binfmt after this takes for good what no binfmt.d file defines", timeout, st.ID)
			os.Exit(1)
		}
	}()
	lk := unix.Flock_t{Type: unix.F_RDLCK}
	err = unix.FcntlFlock(rpmLock.Fd(), unix.F_SETLKW, &lk)
	if !ended.CompareAndSwap(0, 2) {
		select {} // the deadline's goroutine is exiting
	}
	rpmLock.Close()
	if err != nil {
		return errorf("erase guard: waiting for the end of the transaction of process %s: %w; touching nothing", st.ID, err)
	}
	if _, err := os.Stat(m.Config.Root + HelperPath); err == nil {
		m.notice("erase guard: transaction of process %s over: %s is installed, and its triggers guarded the transaction: nothing to do", st.ID, HelperPath)
		return nil
	}
	unlock, err := m.Store.Lock()
	if err != nil {
		return errorf("erase guard: %w", err)
	}
	defer unlock()
	fs, err := binfmt.Open(m.BinfmtDir)
	if err != nil {
		return errorf("erase guard: %w", err)
	}
	now, err := m.table(fs)
	if err != nil {
		return errorf("erase guard: %w", err)
	}
	disk, _ := m.onDisk()
	if !FlushedSince(st.Snapshot, now, disk) {
		m.notice("erase guard: transaction of process %s over: the table was not flushed: nothing to do", st.ID)
		return nil
	}
	// As the guard in a transaction does: what no file registered
	// again, byte for byte, except what files this transaction removed
	// or replaced defined; each entry that cannot be is named. Those
	// files are what the helper's leaving step recorded at the start of
	// the transaction (every file it removes or replaces, as it was),
	// with those seen that went. Where it did not run, every file seen
	// counts as leaving: one that still defines an entry the same way
	// puts it back (PlanRestore), and one that went, or that an upgrade
	// in the transaction rewrote, no longer defines what it did.
	if len(st.Leaving) == 0 {
		st.Leaving = st.Seen
	}
	m.notice("erase guard: transaction of process %s over: systemd-binfmt flushed the table; putting back what no binfmt.d file defines", st.ID)
	return m.restore(fs, st.Snapshot, st)
}
