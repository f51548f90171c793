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
            -- The table as the helper just saw it: each entry's inode (a
            -- registration makes a new one) and first line (enabled or
            -- disabled). guard-before (trigger-guard-before.lua) starts
            -- no process when the table is still exactly this. The
            -- helper's early snapshot also keeps the entries of an
            -- earlier look gone since; where one is (an entry name of
            -- the last look missing now), the snapshot is no longer the
            -- table as it is and guard-before runs for the rest of the
            -- transaction (false).
            local t = {}
            local ok, names = pcall(posix.dir, "/proc/sys/fs/binfmt_misc")
            if not ok or type(names) ~= "table" then
                t = nil
            else
                for _, n in ipairs(names) do
                    if n ~= "." and n ~= ".." and n ~= "register" and n ~= "status" then
                        local p = "/proc/sys/fs/binfmt_misc/" .. n
                        local f = io.open(p)
                        t[n] = tostring(posix.stat(p, "ino")) .. " " .. tostring(f and f:read("*l"))
                        if f then f:close() end
                    end
                end
            end
            local last = binfmtctl_early_table
            if last == false then
                t = false
            elseif t and last then
                for n in pairs(last) do
                    if t[n] == nil then t = false break end
                end
            end
            binfmtctl_early_table = t
        end
    elseif binfmtctl_installed_here and not binfmtctl_early_seen and posix.access("/proc/sys/fs/binfmt_misc/status") then
        binfmtctl_early_seen = true
        pcall(rpm.execute, "/usr/bin/binfmtctl", "trigger", "early", "-")
    end
end
