-- %transfiletriggerin -P 1000701, just before systemd's binfmt trigger
-- (1000700), which flushes every entry: snapshot the live table.
-- Lua, as systemd's own trigger: no shell is started, and none at all
-- where systemd does not run. Only systemd flushes (its trigger, or a
-- restart of systemd-binfmt.service), and only where /run/systemd/system
-- exists: elsewhere there is nothing to guard. binfmtctl's parent is rpm,
-- which names the transaction ("-"). See docs/lifecycle.md, "File
-- triggers". A binfmt problem never fails the transaction.
if posix.access("/run/systemd/system") and posix.access("/usr/bin/binfmtctl", "x") then
    pcall(rpm.execute, "/usr/bin/binfmtctl", "trigger", "guard-before", "-")
end
