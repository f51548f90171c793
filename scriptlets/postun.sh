# %postun: on erase ($1 = 0), finish what %preun did, or do it when %preun
# was skipped (rpm -e --nopreun) or failed.
if [ -x /usr/bin/binfmtctl ]; then
	/usr/bin/binfmtctl hook postun '%{name}-%{version}-%{release}' "$1" || :
elif [ "$1" = 0 ]; then
	# rpm runs the erase %postun after the package's files, binfmtctl
	# included, are gone. The record is plain files for this reason: each
	# claim holds the entry file the kernel showed when binfmtctl
	# registered it, so an entry is removed only while it still matches.
	state=/var/lib/binfmtctl/'%{name}'
	bm=/proc/sys/fs/binfmt_misc
	if [ -d "$state" ] && [ -f "$bm/register" ]; then
		for claim in "$state"/*/*; do
			[ -f "$claim" ] || continue
			entry=${claim%/*}
			entry=${entry##*/}
			if [ -f "$bm/$entry" ]; then
				if [ "$(tail -n +2 "$bm/$entry")" = "$(tail -n +2 "$claim")" ]; then
					if ! echo -1 >"$bm/$entry"; then
						echo "binfmtctl: could not unregister $entry; run: echo -1 > $bm/$entry" >&2
						continue
					fi
				else
					echo "binfmtctl: entry $entry was replaced by someone else since '%{name}' registered it; leaving it alone" >&2
				fi
			fi
			rm -f "$claim"
		done
		rmdir "$state"/* "$state" /var/lib/binfmtctl 2>/dev/null
	elif [ -d "$state" ]; then
		echo "binfmtctl: binfmt_misc is not mounted; the record of '%{name}' stays in $state" >&2
	fi
fi
:
