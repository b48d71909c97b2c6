# access_log.awk - write `lines` lines of a web server's access log (common log format).
# Deterministic for a given seed. Request paths follow a skewed popularity, so summing the
# bytes per path keeps a table of a few thousand entries.
BEGIN {
	srand(seed);
	for (k = 0; k < lines; k++) {
		item = int(rand() * rand() * 4000);
		printf "10.%d.%d.%d - - [06/Dec/2026:%02d:%02d:%02d +0000] \"GET /item/%d HTTP/1.1\" %d %d\n",
		    int(rand() * 256), int(rand() * 256), int(rand() * 256),
		    int(k / 3600) % 24, int(k / 60) % 60, k % 60,
		    item, rand() < 0.97 ? 200 : 404, 200 + int(rand() * 40000);
	}
}
