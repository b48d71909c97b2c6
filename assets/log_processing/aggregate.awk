# aggregate.awk: per-endpoint statistics of web access log lines.
#
# Input: lines in "combined" log format followed by the response time in ms, e.g.
#   1.2.3.4 - - [10/Mar/2024:00:00:00 +0000] "GET /api/v1/products/42 HTTP/1.1" 200 512 "-" "curl/8.5.0" 14
# Output, one line per (method, endpoint) with numeric ids and query strings
# folded away ("/api/v1/products/:id"):
#   METHOD ENDPOINT REQUESTS ERRORS_5XX CLIENT_ERRORS_4XX BYTES MEAN_MS MAX_MS
# Exits 1 when it saw no input line at all.
{
	method = substr($6, 2)
	path = $7
	sub(/\?.*/, "", path)
	gsub(/\/[0-9]+/, "/:id", path)
	key = method " " path
	status = $9 + 0
	ms = $NF + 0
	requests[key]++
	if (status >= 500)
		server_errors[key]++
	else if (status >= 400)
		client_errors[key]++
	bytes[key] += $10
	total_ms[key] += ms
	if (ms > max_ms[key])
		max_ms[key] = ms
}
END {
	if (NR == 0)
		exit 1
	for (key in requests)
		printf "%s %d %d %d %.0f %.1f %d\n", key, requests[key], server_errors[key] + 0,
		    client_errors[key] + 0, bytes[key], total_ms[key] / requests[key], max_ms[key]
}
