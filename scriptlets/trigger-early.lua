-- %filetriggerin: once per package that installs binfmt.d files, before its
-- %post: keep the live table as it is now, for when systemd's binfmt trigger
-- runs before the guard's first half (as rpm does when this package is
-- installed or upgraded in the same transaction), and what the binfmt.d
-- files on disk define, for a file the transaction removes later that the
-- leaving step did not see (it runs only for a helper installed before
-- the transaction).
-- Lua, as systemd's own trigger: no shell is started. Only systemd
-- flushes (its trigger, or a restart of systemd-binfmt.service), and only
-- where /run/systemd/system exists: there it runs for every package that
-- installs binfmt.d files. Elsewhere only the files on disk matter, and
-- only in a transaction that installs the helper: for a helper installed
-- before it, the leaving step sees every file the transaction removes. So
-- the trigger also watches /usr/bin/binfmtctl, which tells a transaction
-- that installs (or upgrades) the helper: rpm runs a package's
-- %filetriggerin for its own files and for the files already installed,
-- while they are all still there. binfmtctl then runs once per rpm process
-- (rpm keeps one Lua state for all scriptlets), and only where
-- binfmt_misc is mounted. binfmtctl's parent is rpm, which names the
-- transaction ("-"). See docs/lifecycle.md, "File triggers". A binfmt
-- problem never fails the transaction.
local binfmt = false
while true do
    local f = rpm.next_file()
    if f == nil then break end
    if f == "/usr/bin/binfmtctl" then
        binfmtctl_installed_here = true
    else
        binfmt = true
    end
end
if posix.access("/usr/bin/binfmtctl", "x") then
    if posix.access("/run/systemd/system") then
        if binfmt then
            pcall(rpm.execute, "/usr/bin/binfmtctl", "trigger", "early", "-")
        end
    elseif binfmtctl_installed_here and not binfmtctl_early_seen and posix.access("/proc/sys/fs/binfmt_misc/status") then
        binfmtctl_early_seen = true
        pcall(rpm.execute, "/usr/bin/binfmtctl", "trigger", "early", "-")
    end
end
