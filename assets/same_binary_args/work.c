/* work: midpoint rule with Kahan summation for 4/(1+x^2) on [0,1] (= pi) over --iterations steps; checks the result. */
#include <errno.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int main(int argc, char **argv)
{
	if (argc != 3 || strcmp(argv[1], "--iterations") != 0) {
		fprintf(stderr, "usage: %s --iterations N\n", argv[0]);
		return 2;
	}
	char *end;
	errno = 0;
	unsigned long long n = strtoull(argv[2], &end, 10);
	if (errno || *end || end == argv[2] || n == 0) {
		fprintf(stderr, "%s: bad iteration count '%s'\n", argv[0], argv[2]);
		return 2;
	}

	/* sum depends on c, c on sum: one serial floating-point chain per step */
	const double h = 1.0 / (double)n;
	double sum = 0.0, c = 0.0;
	for (uint64_t i = 0; i < n; i++) {
		double x = ((double)i + 0.5) * h;
		double y = 4.0 / (1.0 + x * x) - c;
		double t = sum + y;
		c = (t - sum) - y;
		sum = t;
	}
	double got = sum * h;
	const double pi = 3.14159265358979323846;
	double err = fabs(got - pi);
	double tol = 1e-9 + 2.0 * h * h;  /* round-off + midpoint truncation (|f''| <= 8) */
	int ok = err <= tol;
	printf("%s: n=%llu got %.15f error %.3e tolerance %.1e\n", ok ? "PASS" : "FAIL", n, got, err, tol);
	return ok ? 0 : 1;
}
