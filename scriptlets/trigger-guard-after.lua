-- %transfiletriggerin -P 1000699, just after systemd's binfmt trigger:
-- put back what it flushed and no binfmt.d file registered again, then
-- register the entries of installed packages that never call the hooks
-- where systemd's trigger does not run.
-- Lua: rpm runs it in-process, and rpm.execute starts binfmtctl with no
-- shell between (a shell trigger costs rpm a fork of dnf). The files come
-- from rpm.next_file, and the *.conf files directly in a binfmt.d
-- directory are passed as arguments. binfmtctl is started where systemd
-- runs (/run/systemd/system: its trigger flushed) or where there are such
-- files to register; otherwise there is nothing to do.
-- binfmtctl's parent is rpm, which names the transaction ("-"). See
-- docs/lifecycle.md, "File triggers". A binfmt problem never fails the
-- transaction.
local dirs = { ["/usr/lib/binfmt.d"] = true, ["/usr/local/lib/binfmt.d"] = true, ["/etc/binfmt.d"] = true }
local files = {}
while #files < 10000 do
    local f = rpm.next_file()
    if f == nil then break end
    local d = f:match("^(.*)/[^/]+%.conf$")
    if d and dirs[d] then files[#files + 1] = f end
end
if (#files > 0 or posix.access("/run/systemd/system")) and posix.access("/usr/bin/binfmtctl", "x") then
    if binfmtctl_guard_before_skipped then
        -- guard-before started no process (trigger-guard-before.lua):
        -- the early snapshot is the table before the flush.
        table.insert(files, 1, "early-is-before")
    end
    pcall(rpm.execute, "/usr/bin/binfmtctl", "trigger", "guard-after", "-", (table.unpack or unpack)(files))
end
-- The last of the helper's triggers in a transaction that installs
-- binfmt.d files: the early step's flags (trigger-early.lua) are about
-- this transaction, and a process that runs several (PackageKit, a dnf5
-- daemon) keeps its Lua state from one to the next.
binfmtctl_early_seen = nil
binfmtctl_installed_here = nil
binfmtctl_early_table = nil
binfmtctl_guard_before_skipped = nil
