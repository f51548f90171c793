-- %filetriggerin: once per package that installs binfmt.d files, before its
-- %post: keep the live table as it is now, for when systemd's binfmt trigger
-- runs before the guard's first half (as rpm does when this package is
-- installed or upgraded in the same transaction).
-- Lua, as systemd's own trigger: no shell is started, and none at all
-- where systemd does not run. Only systemd flushes (its trigger, or a
-- restart of systemd-binfmt.service), and only where /run/systemd/system
-- exists: elsewhere there is nothing to guard. binfmtctl's parent is rpm,
-- which names the transaction ("-"). See docs/lifecycle.md, "File
-- triggers". A binfmt problem never fails the transaction.
if posix.access("/run/systemd/system") and posix.access("/usr/bin/binfmtctl", "x") then
    pcall(rpm.execute, "/usr/bin/binfmtctl", "trigger", "early", "-")
end
