# pipeline.sh: one log_processing task, run as
#     sh "$CASE_ASSETS/pipeline.sh" PREFIX INPUT.gz REPORT
# PREFIX is "short" or "long" and selects the renamed tool copies in $BIN:
#     PREFIX_gzip -dc | PREFIX_grep (API requests) | PREFIX_awk (aggregate) | PREFIX_sort
# The exit status of every stage is kept in a file (POSIX sh has no pipefail);
# the script exits non-zero if any stage failed or the report is empty.
set -u
prefix=$1
input=$2
report=$3
LC_ALL=C
export LC_ALL
rm -f stage-*.status
{ "$BIN/${prefix}_gzip" -dc "$input"; echo $? > stage-1-gzip.status; } |
	{ "$BIN/${prefix}_grep" -E '"(GET|POST|PUT|DELETE) /api/'; echo $? > stage-2-grep.status; } |
	{ "$BIN/${prefix}_awk" -f "$CASE_ASSETS/aggregate.awk"; echo $? > stage-3-awk.status; } |
	"$BIN/${prefix}_sort" --parallel=1 -S 64M -t ' ' -k3,3nr -k1,2 > "$report"
rc=$?
for f in stage-*.status; do
	read -r s < "$f"
	if [ "$s" -ne 0 ]; then
		echo "pipeline stage ${f#stage-} exited $s" >&2
		rc=1
	fi
done
[ -s "$report" ] || { echo "empty report" >&2; rc=1; }
exit "$rc"
