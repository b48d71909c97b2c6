/*
 * integ_test: the slow integration test of the quadrature library in quad.h.
 *
 * Usage: integ_test ITERATIONS
 *   Splits ITERATIONS evenly over five checks: the four midpoint integrals and
 *   a velocity-Verlet run of a harmonic oscillator (position, velocity and
 *   energy are compared with the exact solution).  Exits 0 when every check
 *   passes, 1 otherwise, 2 on bad usage.
 */
#include "quad.h"

int main(int argc, char **argv)
{
	if (argc != 2) {
		fprintf(stderr, "usage: %s ITERATIONS\n", argv[0]);
		return 2;
	}
	uint64_t total = parse_count(argv[1], "ITERATIONS");
	uint64_t n = total / (N_INTEGRALS + 1);
	if (n == 0)
		n = 1;
	int failures = 0;

	for (int which = 0; which < N_INTEGRALS; which++) {
		double got = midpoint_kahan(which, n);
		double err = fabs(got - integrals[which].exact);
		double tol = midpoint_tolerance(which, n);
		int ok = err <= tol;
		failures += !ok;
		printf("%s: integral %s with n=%llu: got %.15f, error %.3e (tolerance %.1e)\n",
		       ok ? "PASS" : "FAIL", integrals[which].name, (unsigned long long)n, got,
		       err, tol);
	}

	const double t_end = 10.0;
	double x, v;
	oscillator(t_end, n, &x, &v);
	double dt = t_end / (double)n;
	double tol = 1e-8 + t_end * dt * dt;
	double ex = fabs(x - cos(t_end)), ev = fabs(v + sin(t_end));
	double ee = fabs(0.5 * (x * x + v * v) - 0.5);
	int ok = ex <= tol && ev <= tol && ee <= tol;
	failures += !ok;
	printf("%s: oscillator with n=%llu: x=%.12f v=%.12f, errors %.2e %.2e energy %.2e "
	       "(tolerance %.1e)\n", ok ? "PASS" : "FAIL", (unsigned long long)n, x, v, ex, ev,
	       ee, tol);

	printf("%d of %d checks failed\n", failures, N_INTEGRALS + 1);
	return failures ? 1 : 0;
}
