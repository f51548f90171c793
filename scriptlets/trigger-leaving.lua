-- %transfiletriggerun -P 1000701: before the transaction, the binfmt.d
-- files that will be removed or replaced, while they still exist: record
-- what they define and, where a record claims an entry they define, which
-- packages own them (rpm is asked only then: lifecycle.AskOwners).
-- Lua: rpm runs it in-process, and rpm.execute starts binfmtctl with no
-- shell between (a shell trigger costs rpm a fork of dnf). The files come
-- from rpm.next_file, the *.conf files directly in a binfmt.d directory
-- are passed as arguments, and with none binfmtctl is not started.
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
if #files > 0 and posix.access("/usr/bin/binfmtctl", "x") then
    pcall(rpm.execute, "/usr/bin/binfmtctl", "trigger", "leaving", "-", (table.unpack or unpack)(files))
end
