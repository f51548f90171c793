-- %filetriggerin: once per package that installs binfmt.d files, before its
-- %post: keep the live table as it is now, for when systemd's binfmt trigger
-- runs before the guard's first half (as rpm does when this package is
-- installed or upgraded in the same transaction), and what the binfmt.d
-- files on disk define, for a file the transaction removes later that the
-- leaving step did not see (it runs only for a helper installed before
-- the transaction).
-- Lua, as systemd's own trigger: no shell is started. Only systemd
-- flushes (its trigger, or a restart of systemd-binfmt.service), and only
-- where /run/systemd/system exists: there it runs for every package.
-- Elsewhere only the files on disk before the transaction matter, so it
-- runs once per rpm process (rpm keeps one Lua state for all scriptlets),
-- and only where binfmt_misc is mounted. binfmtctl's parent is rpm, which
-- names the transaction ("-"). See docs/lifecycle.md, "File triggers". A
-- binfmt problem never fails the transaction.
if posix.access("/usr/bin/binfmtctl", "x") then
    if posix.access("/run/systemd/system") then
        pcall(rpm.execute, "/usr/bin/binfmtctl", "trigger", "early", "-")
    elseif not binfmtctl_early_seen and posix.access("/proc/sys/fs/binfmt_misc/status") then
        binfmtctl_early_seen = true
        pcall(rpm.execute, "/usr/bin/binfmtctl", "trigger", "early", "-")
    end
end
