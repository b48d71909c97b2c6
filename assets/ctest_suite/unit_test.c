/*
 * unit_test: one fast unit test of the quadrature routine in quad.h.
 *
 * Usage: unit_test INDEX ITERATIONS
 *   INDEX selects the integral (INDEX mod 4), ITERATIONS the number of
 *   midpoint sub-intervals.  Prints the result; exits 0 when it matches the
 *   closed form within tolerance, 1 otherwise, 2 on bad usage.
 */
#include "quad.h"

int main(int argc, char **argv)
{
	if (argc != 3) {
		fprintf(stderr, "usage: %s INDEX ITERATIONS\n", argv[0]);
		return 2;
	}
	int which = (int)(strtoul(argv[1], NULL, 10) % N_INTEGRALS);
	uint64_t n = parse_count(argv[2], "ITERATIONS");

	double got = midpoint_kahan(which, n);
	double err = fabs(got - integrals[which].exact);
	double tol = midpoint_tolerance(which, n);
	int ok = err <= tol;
	printf("%s: integral %s with n=%llu: got %.15f, error %.3e (tolerance %.1e)\n",
	       ok ? "PASS" : "FAIL", integrals[which].name, (unsigned long long)n, got, err, tol);
	return ok ? 0 : 1;
}
