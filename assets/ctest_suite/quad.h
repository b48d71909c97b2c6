/*
 * quad.h: the small "numerical library" exercised by the ctest_suite case.
 *
 * midpoint_kahan() integrates one of a few fixed integrands with the midpoint
 * rule over n sub-intervals, summing with Kahan compensation; oscillator()
 * integrates x'' = -x with velocity Verlet.  Both loops carry a floating-point
 * dependency from one iteration to the next, so without -ffast-math the
 * compiler can neither vectorise nor shorten them, and the work done is
 * proportional to the iteration count given on the command line.
 */
#ifndef QUAD_H
#define QUAD_H

#include <errno.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

struct integral {
	const char *name;
	double a, b;    /* interval */
	double exact;   /* closed form of the integral */
};

#define N_INTEGRALS 4
static const struct integral integrals[N_INTEGRALS] = {
	{ "4/(1+x^2) on [0,1] = pi", 0.0, 1.0, 3.14159265358979323846 },
	{ "1/x on [1,2] = ln 2", 1.0, 2.0, 0.69314718055994530942 },
	{ "1/(1+x)^2 on [0,1] = 1/2", 0.0, 1.0, 0.5 },
	{ "x/(1+x^2) on [0,1] = ln(2)/2", 0.0, 1.0, 0.34657359027997265471 },
};

#define MIDPOINT_LOOP(EXPR)                                               \
	for (uint64_t i = 0; i < n; i++) {                                \
		double x = a + ((double)i + 0.5) * h;                     \
		double y = (EXPR) - c;                                    \
		double t = sum + y;                                       \
		c = (t - sum) - y;                                        \
		sum = t;                                                  \
	}

static inline double midpoint_kahan(int which, uint64_t n)
{
	const double a = integrals[which].a, b = integrals[which].b;
	const double h = (b - a) / (double)n;
	double sum = 0.0, c = 0.0;

	switch (which) {
	case 0: MIDPOINT_LOOP(4.0 / (1.0 + x * x)); break;
	case 1: MIDPOINT_LOOP(1.0 / x); break;
	case 2: MIDPOINT_LOOP(1.0 / ((1.0 + x) * (1.0 + x))); break;
	default: MIDPOINT_LOOP(x / (1.0 + x * x)); break;
	}
	return sum * h;
}

/* Allowed error: round-off plus the midpoint rule's O(h^2) truncation error. */
static inline double midpoint_tolerance(int which, uint64_t n)
{
	double h = (integrals[which].b - integrals[which].a) / (double)n;
	return 1e-9 + 2.0 * h * h;
}

/*
 * Velocity Verlet for x'' = -x, x(0) = 1, v(0) = 0, over [0, t_end] in n steps.
 * Stores x(t_end) and v(t_end); the exact solution is cos(t), -sin(t).
 */
static inline void oscillator(double t_end, uint64_t n, double *x_out, double *v_out)
{
	const double dt = t_end / (double)n, half = 0.5 * dt;
	double x = 1.0, v = 0.0, acc = -x;

	for (uint64_t i = 0; i < n; i++) {
		v += half * acc;
		x += dt * v;
		acc = -x;
		v += half * acc;
	}
	*x_out = x;
	*v_out = v;
}

static inline uint64_t parse_count(const char *s, const char *what)
{
	char *end;
	errno = 0;
	unsigned long long v = strtoull(s, &end, 10);
	if (errno || end == s || *end != '\0' || v == 0) {
		fprintf(stderr, "bad %s: %s\n", what, s);
		exit(2);
	}
	return (uint64_t)v;
}

#endif
