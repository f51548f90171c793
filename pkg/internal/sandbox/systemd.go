package sandbox

import "testing"

// SystemdBooted is systemd's "booted with systemd" marker: systemd's binfmt
// trigger runs systemd-binfmt only where it exists, and the helper's
// triggers take a Fedora host's path (the guard) there too.
const SystemdBooted = "/run/systemd/system"

// SystemdTrigger builds a package that carries systemd's binfmt trigger as
// systemd's src/rpm/triggers.systemd.in writes it, running the real
// systemd-binfmt (Debian's, at the Fedora path through the merged /usr)
// where SystemdBooted exists: a Fedora host's systemd package, as far as
// binfmt_misc sees it. The end-to-end tests and the triggers' benchmark
// share it.
func SystemdTrigger(t testing.TB) string {
	t.Helper()
	Require(t, "/usr/lib/systemd/systemd-binfmt", "systemd")
	return BuildRPM(t, PackageSpec{
		Name: "systemd-binfmt-trigger", Version: "258",
		Triggers: []Trigger{{
			Kind: "transfiletriggerin", Priority: 1000700, Interpreter: "<lua>", Paths: []string{"/usr/lib/binfmt.d"},
			Body: `-- This script will automatically apply binfmt rules if files have been
-- installed or updated in /usr/lib/binfmt.d.
if posix.access("/run/systemd/system") then
    pid = posix.fork()
    if pid == 0 then
        assert(posix.exec("/usr/lib/systemd/systemd-binfmt"))
    elseif pid > 0 then
        posix.wait(pid)
    end
end
`,
		}},
	})
}
