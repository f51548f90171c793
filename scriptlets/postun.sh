# %postun: on erase ($1 = 0), finish what %preun did, or do it when %preun
# was skipped (rpm -e --nopreun) or failed.
if [ -x /usr/bin/binfmtctl ]; then
	/usr/bin/binfmtctl hook postun '%{name}-%{version}-%{release}' "$1" || :
elif [ "$1" = 0 ]; then
	# rpm runs the erase %postun after the package's files, binfmtctl
	# included, are gone. The record is plain text for this reason: each
	# "== NAME" section holds the entry file the kernel showed when
	# binfmtctl registered NAME, so an entry is removed only while it
	# still matches, exactly as binfmtctl would.
	state=/var/lib/binfmtctl
	record=$state/'%{name}'
	bm=/proc/sys/fs/binfmt_misc
	# rootonly PATH: owned by root and writable by no one else, as
	# binfmtctl requires of the record; anyone else could plant claims.
	rootonly() {
		set -- $(ls -ldn "$1" 2>/dev/null)
		[ "$3" = 0 ] && case $1 in ?????-??-*) true ;; *) false ;; esac
	}
	if [ ! -e "$record" ] && [ ! -L "$record" ]; then
		: nothing was recorded
	elif [ -L "$state" ] || [ ! -d "$state" ] || [ -L "$record" ] || [ ! -f "$record" ] ||
		! rootonly "$state" || ! rootonly "$record"; then
		echo "binfmtctl: refusing $record: it and $state must be a plain file and directory owned by root and writable by root alone; nothing unregistered" >&2
	elif [ ! -f "$bm/register" ]; then
		echo "binfmtctl: binfmt_misc is not mounted; the record of '%{name}' stays in $record" >&2
	elif [ ! -w "$bm/register" ]; then
		echo "binfmtctl: binfmt_misc is read-only or refuses writes; the entries of '%{name}' stay registered and its record stays in $record" >&2
	else
		kept=
		differ=
		claim() {
			[ -n "$name" ] || return 0
			# What binfmtctl refuses as a name (binfmt.ValidName): a "/"
			# would lead out of binfmt_misc, and "-1" written to status
			# unregisters every entry.
			case $name in
			. | .. | */* | register | status)
				echo "binfmtctl: $record claims \"$name\", which is not an entry name; ignoring it" >&2
				return 0
				;;
			esac
			live=$bm/$name
			[ -f "$live" ] || return 0
			# Compare without the enabled/disabled line.
			if [ "$(tail -n +2 "$live")" = "$(printf '%s' "$body" | tail -n +2)" ]; then
				if ! { echo -1 >"$live"; } 2>/dev/null; then
					echo "binfmtctl: could not unregister $name; run: echo -1 > $live" >&2
					kept=1
				fi
			else
				case " $differ " in
				*" $name "*) ;;
				*) differ="$differ $name" ;;
				esac
			fi
		}
		name=
		body=
		header=
		while IFS= read -r line; do
			if [ -z "$header" ]; then
				# The first line is the header, as binfmtctl requires:
				# a record without it is not trusted at all.
				[ "$line" = "# binfmtctl record 1" ] && header=1 && continue
				echo "binfmtctl: $record has an unknown format; remove its entries by hand" >&2
				kept=1
				break
			fi
			case $line in
			"# binfmtctl record 1") ;;
			"# "*)
				echo "binfmtctl: $record has an unknown format; remove its entries by hand" >&2
				kept=1
				break
				;;
			"== "*)
				claim
				name=${line#== }
				body=
				;;
			*) body="$body$line
" ;;
			esac
		done <"$record"
		claim
		# An entry still live after all its claims were tried is someone
		# else's now.
		for name in $differ; do
			if [ -f "$bm/$name" ]; then
				echo "binfmtctl: entry $name was replaced by someone else since '%{name}' registered it; leaving it alone" >&2
			fi
		done
		if [ -z "$kept" ]; then
			if err=$(rm -f "$record" 2>&1); then
				rmdir "$state" 2>/dev/null
			else
				echo "binfmtctl: could not remove the record ($err); remove $record by hand" >&2
			fi
		fi
	fi
fi
:
