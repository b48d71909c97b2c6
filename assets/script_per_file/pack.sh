#!/bin/sh
# pack.sh DIR: compress every file of DIR with a gzip of its own, as a per-file batch step
# would, into the current directory, then check that each one made an archive.
set -eu
dir=$1
n=0
for f in "$dir"/*; do
	gzip -6 -c "$f" > "${f##*/}.gz"
	n=$((n + 1))
done
made=$(ls | grep -c '\.gz$')
[ "$made" -eq "$n" ] || { echo "pack.sh: $made archives for $n files" >&2; exit 1; }
