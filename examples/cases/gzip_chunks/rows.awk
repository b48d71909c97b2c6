# rows.awk - write `rows` lines of a table dump: id, a category, a price and a free-text field.
# Deterministic for a given seed, and only partly compressible, so gzip works for its size.
BEGIN {
	srand(seed);
	for (k = 0; k < rows; k++)
		printf "%08d,%s,%.2f,item %d of lot %d\n", k, substr("abcdefghij", int(rand() * 10) + 1, 1),
		    rand() * 1000, int(rand() * 100000), int(rand() * 500);
}
