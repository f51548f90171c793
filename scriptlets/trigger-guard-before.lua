-- %transfiletriggerin -P 1000701, just before systemd's binfmt trigger
-- (1000700), which flushes every entry: snapshot the live table.
-- Lua, as systemd's own trigger: no shell is started, and none at all
-- where systemd does not run. Only systemd flushes (its trigger, or a
-- restart of systemd-binfmt.service), and only where /run/systemd/system
-- exists: elsewhere there is nothing to guard. binfmtctl's parent is rpm,
-- which names the transaction ("-"). See docs/lifecycle.md, "File
-- triggers". A binfmt problem never fails the transaction.
-- Where the table is exactly as the early step of this rpm process left
-- it (trigger-early.lua: every entry with the same inode and first line,
-- none added), the helper's early snapshot is the table now: no process
-- is started, and guard-after tells the helper to take that snapshot as
-- guard-before's. Anything else (an entry registered again, disabled,
-- added or removed since, or no early step in this process: rpm ran
-- systemd's trigger, or guard-after, first) starts binfmtctl as before.
if posix.access("/run/systemd/system") and posix.access("/usr/bin/binfmtctl", "x") then
    local same = false
    local last = binfmtctl_early_table
    local ok, names = pcall(posix.dir, "/proc/sys/fs/binfmt_misc")
    if last and ok and type(names) == "table" then
        same = true
        local seen = 0
        for _, n in ipairs(names) do
            if n ~= "." and n ~= ".." and n ~= "register" and n ~= "status" then
                local p = "/proc/sys/fs/binfmt_misc/" .. n
                local f = io.open(p)
                local now = tostring(posix.stat(p, "ino")) .. " " .. tostring(f and f:read("*l"))
                if f then f:close() end
                seen = seen + 1
                if last[n] ~= now then same = false break end
            end
        end
        for _ in pairs(last) do seen = seen - 1 end
        same = same and seen == 0
    end
    if same then
        binfmtctl_guard_before_skipped = true
    else
        binfmtctl_guard_before_skipped = nil
        pcall(rpm.execute, "/usr/bin/binfmtctl", "trigger", "guard-before", "-")
    end
end
