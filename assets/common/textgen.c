/*
 * textgen: fast, deterministic generator of synthetic test data for the
 * schedgen cases.  Compiled by the cases' setup commands into $BIN.
 *
 * Usage: textgen -m MODE [-b SIZE] [-n LINES] [-s SEED] [-o FILE]
 *
 *   MODE    prose   paragraphs of pseudo-English (Zipf-like word frequencies)
 *           applog  application log lines (timestamp, level, thread, message)
 *           access  web server access log, "combined" format + response time
 *           mixed   blocks of applog lines alternating with prose paragraphs
 *           random  pseudo-random bytes (incompressible)
 *   SIZE    output size in bytes; a decimal number with an optional K, M or G
 *           suffix (powers of 1024), e.g. 0.23M or 170M.  Text modes stop
 *           after the line that reaches SIZE, so text files end with '\n';
 *           random mode writes exactly SIZE bytes.
 *   LINES   stop after this many lines (text modes).  With both -b and -n
 *           the first limit reached wins; at least one is required.
 *   SEED    unsigned integer (default 1).  Same arguments => same bytes.
 *   FILE    output file (default: standard output).
 *
 * Exit status: 0 on success, 2 on bad usage, 1 on write errors.
 */
#define _POSIX_C_SOURCE 200809L
#include <errno.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* ---------- PRNG: xoshiro256** seeded through splitmix64 ---------- */

static uint64_t rng_s[4];

static uint64_t splitmix64(uint64_t *x)
{
	uint64_t z = (*x += 0x9e3779b97f4a7c15ULL);
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
	return z ^ (z >> 31);
}

static void rng_seed(uint64_t seed)
{
	for (int i = 0; i < 4; i++)
		rng_s[i] = splitmix64(&seed);
}

static inline uint64_t rotl(uint64_t x, int k)
{
	return (x << k) | (x >> (64 - k));
}

static inline uint64_t rng_next(void)
{
	uint64_t r = rotl(rng_s[1] * 5, 7) * 9;
	uint64_t t = rng_s[1] << 17;
	rng_s[2] ^= rng_s[0];
	rng_s[3] ^= rng_s[1];
	rng_s[1] ^= rng_s[2];
	rng_s[0] ^= rng_s[3];
	rng_s[2] ^= t;
	rng_s[3] = rotl(rng_s[3], 45);
	return r;
}

/* uniform integer in [0, n) (n > 0; the tiny modulo bias is irrelevant here) */
static inline uint32_t rnd(uint32_t n)
{
	return (uint32_t)(((rng_next() >> 32) * (uint64_t)n) >> 32);
}

/* uniform double in [0, 1) */
static inline double rndf(void)
{
	return (double)(rng_next() >> 11) * (1.0 / 9007199254740992.0);
}

/* rank in [0, n) with probability roughly proportional to 1/(rank+1) */
static inline uint32_t zipf(uint32_t n)
{
	uint32_t r = (uint32_t)exp(rndf() * log((double)n + 1.0)) - 1;
	return r < n ? r : n - 1;
}

/* ---------- output buffer with size/line accounting ---------- */

static FILE *out;
static uint64_t written;
static uint64_t lines_written;
static char line[4096];
static size_t len;

static void put(const char *s)
{
	size_t n = strlen(s);
	if (len + n >= sizeof(line) - 2)
		n = sizeof(line) - 2 - len;
	memcpy(line + len, s, n);
	len += n;
}

static void putc_(char c)
{
	if (len < sizeof(line) - 2)
		line[len++] = c;
}

static void putnum(uint64_t v)
{
	char tmp[24];
	snprintf(tmp, sizeof(tmp), "%llu", (unsigned long long)v);
	put(tmp);
}

static void endline(void)
{
	line[len++] = '\n';
	if (fwrite(line, 1, len, out) != len) {
		perror("textgen: write");
		exit(1);
	}
	written += len;
	lines_written++;
	len = 0;
}

/* ---------- vocabulary of pseudo-words ---------- */

#define VOCAB 12000
static char *vocab[VOCAB];

static const char *onsets[] = {
	"b", "c", "d", "f", "g", "h", "j", "k", "l", "m", "n", "p", "r", "s",
	"t", "v", "w", "st", "tr", "pl", "gr", "sh", "ch", "th", "br", "cl",
	"", "", "qu", "sp",
};
static const char *nuclei[] = {
	"a", "e", "i", "o", "u", "ai", "ea", "ou", "io", "ee", "a", "e", "o",
};
static const char *codas[] = {
	"", "", "", "n", "r", "s", "t", "l", "nd", "st", "ng", "m", "ck", "x",
};
#define NELEM(a) (sizeof(a) / sizeof((a)[0]))

static void build_vocab(void)
{
	/* a fixed seed: the vocabulary is the same for every SEED */
	uint64_t saved[4];
	memcpy(saved, rng_s, sizeof(saved));
	rng_seed(0x5eed);
	for (int i = 0; i < VOCAB; i++) {
		char w[40] = "";
		/* frequent words (low rank) are short */
		int syl = i < 100 ? 1 : i < 2000 ? 1 + (int)rnd(2) : 2 + (int)rnd(2);
		for (int k = 0; k < syl; k++) {
			strcat(w, onsets[rnd(NELEM(onsets))]);
			strcat(w, nuclei[rnd(NELEM(nuclei))]);
			strcat(w, codas[rnd(NELEM(codas))]);
		}
		vocab[i] = strdup(w);
	}
	memcpy(rng_s, saved, sizeof(saved));
}

static const char *word(void)
{
	return vocab[zipf(VOCAB)];
}

/* ---------- prose ---------- */

static void sentence(void)
{
	int n = 4 + rnd(18);
	for (int i = 0; i < n; i++) {
		const char *w = word();
		if (i == 0) {
			putc_((char)(w[0] - 'a' + 'A'));
			put(w + 1);
		} else {
			put(w);
		}
		if (i + 1 < n) {
			putc_(rnd(9) == 0 ? ',' : ' ');
			if (line[len - 1] == ',')
				putc_(' ');
		}
	}
	put(rnd(12) == 0 ? "? " : ". ");
}

/* one paragraph, wrapped at about 76 columns, followed by an empty line */
static void paragraph(void)
{
	int n = 2 + rnd(6);
	for (int s = 0; s < n; s++) {
		sentence();
		while (len > 76) {
			/* wrap: emit up to the last space before column 76 */
			size_t cut = 76;
			while (cut > 0 && line[cut] != ' ')
				cut--;
			if (cut == 0)
				cut = len;
			char rest[4096];
			size_t rl = len - cut - (cut < len);
			memcpy(rest, line + cut + (cut < len), rl);
			len = cut;
			endline();
			memcpy(line, rest, rl);
			len = rl;
		}
	}
	while (len > 0 && line[len - 1] == ' ')
		len--;
	if (len > 0)
		endline();
	endline(); /* blank line between paragraphs */
}

/* ---------- shared log pieces ---------- */

static time_t clock_s = 1710028800; /* 2024-03-10 00:00:00 UTC */
static uint32_t clock_ms;

static void tick(uint32_t max_ms)
{
	clock_ms += rnd(max_ms + 1);
	clock_s += clock_ms / 1000;
	clock_ms %= 1000;
}

static void put_ip(uint32_t id)
{
	/* deterministic scatter of a client id over plausible addresses */
	uint64_t h = id * 0x9e3779b97f4a7c15ULL;
	char tmp[24];
	snprintf(tmp, sizeof(tmp), "%u.%u.%u.%u", 10 + (unsigned)(h >> 58) * 3,
		 (unsigned)(h >> 40) & 255, (unsigned)(h >> 32) & 255,
		 1 + (unsigned)((h >> 24) & 253));
	put(tmp);
}

/* ---------- application log ---------- */

static const char *levels[] = { "INFO ", "INFO ", "INFO ", "INFO ", "DEBUG",
				"DEBUG", "WARN ", "ERROR" };
static const char *components[] = {
	"http.server", "order.service", "auth.token", "db.pool", "cache.lru",
	"payment.gateway", "inventory.sync", "mailer", "scheduler.cron",
	"search.index",
};
/* %w word, %n number, %h hex id, %f decimal, %i ip, %c component */
static const char *templates[] = {
	"processed order %n for customer %n in %n ms (items=%n, total=%f EUR)",
	"GET /api/v2/%w/%n -> 200 in %n ms",
	"cache miss for key %w:%n, loading from backend",
	"connection %h acquired from pool (active=%n, idle=%n)",
	"user %n logged in from %i",
	"retrying request %h to %c (attempt %n of 5): timeout after %n ms",
	"scheduled job %w-%w finished, next run in %n s",
	"indexed %n documents into shard %n (%f MB)",
	"payment %h authorised, amount %f, currency EUR",
	"slow query on table %w took %n ms: SELECT * FROM %w WHERE id = %n",
	"session %h expired for user %n",
	"stock level for sku %n updated to %n",
	"failed to deliver message %h to %w@%w.example: mailbox full",
	"request %h completed with status %n",
};

static void expand(const char *t)
{
	char tmp[32];
	for (; *t; t++) {
		if (*t != '%') {
			putc_(*t);
			continue;
		}
		switch (*++t) {
		case 'w':
			put(word());
			break;
		case 'n':
			putnum(zipf(100000));
			break;
		case 'h':
			snprintf(tmp, sizeof(tmp), "%08x", (unsigned)rnd(0xffffffffu));
			put(tmp);
			break;
		case 'f':
			snprintf(tmp, sizeof(tmp), "%.2f", rndf() * 500.0);
			put(tmp);
			break;
		case 'i':
			put_ip(zipf(20000));
			break;
		case 'c':
			put(components[rnd(NELEM(components))]);
			break;
		default:
			putc_(*t);
		}
	}
}

static void applog_line(void)
{
	char tmp[64];
	struct tm tm;
	tick(40);
	gmtime_r(&clock_s, &tm);
	strftime(tmp, sizeof(tmp), "%Y-%m-%d %H:%M:%S", &tm);
	put(tmp);
	snprintf(tmp, sizeof(tmp), ".%03u ", clock_ms);
	put(tmp);
	put(levels[rnd(NELEM(levels))]);
	snprintf(tmp, sizeof(tmp), " [worker-%u] ", rnd(16));
	put(tmp);
	put(components[rnd(NELEM(components))]);
	put(": ");
	expand(templates[zipf(NELEM(templates))]);
	endline();
}

/* ---------- access log ("combined" format + response time in ms) ---------- */

static const char *paths[] = {
	"/api/v1/products/%n", "/api/v1/cart", "/", "/api/v1/search?q=%w",
	"/static/js/app.%h.js", "/products/%n", "/api/v1/users/%n/orders",
	"/static/css/site.%h.css", "/login", "/api/v1/checkout",
	"/images/%n.jpg", "/api/v1/recommendations?user=%n", "/health",
	"/blog/%w-%w", "/api/v1/reviews/%n", "/favicon.ico",
};
static const char *agents[] = {
	"Mozilla/5.0 (X11; Linux x86_64; rv:123.0) Gecko/20100101 Firefox/123.0",
	"Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/122.0.0.0 Safari/537.36",
	"Mozilla/5.0 (iPhone; CPU iPhone OS 17_3 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.3 Mobile/15E148 Safari/604.1",
	"Mozilla/5.0 (Macintosh; Intel Mac OS X 14_3) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.3 Safari/605.1.15",
	"curl/8.5.0",
	"python-requests/2.31.0",
	"Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)",
	"okhttp/4.12.0",
};

static void access_line(void)
{
	static time_t cached = -1;
	static char stamp[40];
	uint32_t r;
	const char *method, *status;

	tick(12);
	if (clock_s != cached) {
		struct tm tm;
		gmtime_r(&clock_s, &tm);
		strftime(stamp, sizeof(stamp), "[%d/%b/%Y:%H:%M:%S +0000]", &tm);
		cached = clock_s;
	}
	put_ip(zipf(50000));
	put(" - - ");
	put(stamp);

	r = rnd(100);
	method = r < 78 ? "GET" : r < 93 ? "POST" : r < 97 ? "PUT" : r < 99 ? "DELETE" : "HEAD";
	put(" \"");
	put(method);
	putc_(' ');
	expand(paths[zipf(NELEM(paths))]);
	put(" HTTP/1.1\" ");

	r = rnd(1000);
	status = r < 850 ? "200" : r < 900 ? "304" : r < 920 ? "301" : r < 960 ? "404" :
		 r < 970 ? "403" : r < 990 ? "500" : "503";
	put(status);
	putc_(' ');
	putnum(status[0] == '3' ? 0 : (uint64_t)(-log(1.0 - rndf()) * 12000.0));
	put(rnd(3) ? " \"-\" \"" : " \"https://shop.example/\" \"");
	put(agents[zipf(NELEM(agents))]);
	put("\" ");
	putnum(1 + (uint64_t)(-log(1.0 - rndf()) * (status[0] == '5' ? 900.0 : 60.0)));
	endline();
}

/* ---------- random bytes ---------- */

static int random_bytes(uint64_t size)
{
	static uint64_t buf[1 << 14];
	while (size > 0) {
		size_t n = sizeof(buf) < size ? sizeof(buf) : (size_t)size;
		for (size_t i = 0; i < (n + 7) / 8; i++)
			buf[i] = rng_next();
		if (fwrite(buf, 1, n, out) != n) {
			perror("textgen: write");
			return 1;
		}
		size -= n;
	}
	return 0;
}

/* ---------- main ---------- */

static int parse_size(const char *s, uint64_t *v)
{
	char *end;
	errno = 0;
	double d = strtod(s, &end);
	if (end == s || errno || d < 0)
		return -1;
	switch (*end) {
	case 'K': case 'k': d *= 1024.0; end++; break;
	case 'M': case 'm': d *= 1048576.0; end++; break;
	case 'G': case 'g': d *= 1073741824.0; end++; break;
	}
	if (*end != '\0')
		return -1;
	*v = (uint64_t)(d + 0.5);
	return 0;
}

static void usage(void)
{
	fprintf(stderr, "usage: textgen -m prose|applog|access|mixed|random "
			"[-b SIZE[K|M|G]] [-n LINES] [-s SEED] [-o FILE]\n");
	exit(2);
}

int main(int argc, char **argv)
{
	const char *mode = NULL, *file = NULL;
	uint64_t max_bytes = UINT64_MAX, max_lines = UINT64_MAX, seed = 1;
	int opt, have_limit = 0;

	while ((opt = getopt(argc, argv, "m:b:n:s:o:")) != -1) {
		switch (opt) {
		case 'm': mode = optarg; break;
		case 'b':
			if (parse_size(optarg, &max_bytes))
				usage();
			have_limit = 1;
			break;
		case 'n':
			if (parse_size(optarg, &max_lines))
				usage();
			have_limit = 1;
			break;
		case 's': seed = strtoull(optarg, NULL, 10); break;
		case 'o': file = optarg; break;
		default: usage();
		}
	}
	if (!mode || !have_limit || optind != argc)
		usage();

	out = file ? fopen(file, "wb") : stdout;
	if (!out) {
		perror(file);
		return 1;
	}
	setvbuf(out, NULL, _IOFBF, 1 << 20);
	rng_seed(seed);
	build_vocab();

	if (strcmp(mode, "random") == 0) {
		if (max_bytes == UINT64_MAX)
			usage();
		if (random_bytes(max_bytes))
			return 1;
	} else if (strcmp(mode, "prose") == 0) {
		while (written < max_bytes && lines_written < max_lines)
			paragraph();
	} else if (strcmp(mode, "applog") == 0) {
		while (written < max_bytes && lines_written < max_lines)
			applog_line();
	} else if (strcmp(mode, "access") == 0) {
		while (written < max_bytes && lines_written < max_lines)
			access_line();
	} else if (strcmp(mode, "mixed") == 0) {
		while (written < max_bytes && lines_written < max_lines) {
			uint32_t n = 20 + rnd(180);
			for (uint32_t i = 0; i < n && written < max_bytes &&
					     lines_written < max_lines; i++)
				applog_line();
			n = 1 + rnd(5);
			for (uint32_t i = 0; i < n && written < max_bytes &&
					     lines_written < max_lines; i++)
				paragraph();
		}
	} else {
		usage();
	}
	if (fflush(out) != 0 || (file && fclose(out) != 0)) {
		perror("textgen: write");
		return 1;
	}
	return 0;
}
