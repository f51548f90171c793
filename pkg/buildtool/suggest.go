package buildtool

// closest returns the candidate nearest to name, for "did you mean": the
// one that name starts, or else the one within an edit distance of about
// a third of its length (a typo, a swapped pair of letters), or "" when
// none is that close.
func closest(name string, candidates []string) string {
	if name == "" {
		return ""
	}
	best, bestDist := "", -1
	for _, c := range candidates {
		if len(name) >= 2 && len(name) < len(c) && c[:len(name)] == name {
			return c
		}
		d := editDistance(name, c)
		if d <= max(1, len(c)/3) && (bestDist < 0 || d < bestDist) {
			best, bestDist = c, d
		}
	}
	return best
}

// editDistance is the optimal string alignment distance between a and b:
// insertions, deletions, substitutions and swaps of adjacent bytes each
// count one, so "biuld" is one from "build".
func editDistance(a, b string) int {
	// d[i][j] is the distance between a[:i] and b[:j].
	d := make([][]int, len(a)+1)
	for i := range d {
		d[i] = make([]int, len(b)+1)
		d[i][0] = i
	}
	for j := range d[0] {
		d[0][j] = j
	}
	for i := 1; i <= len(a); i++ {
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			d[i][j] = min(d[i-1][j]+1, d[i][j-1]+1, d[i-1][j-1]+cost)
			if i > 1 && j > 1 && a[i-1] == b[j-2] && a[i-2] == b[j-1] {
				d[i][j] = min(d[i][j], d[i-2][j-2]+1)
			}
		}
	}
	return d[len(a)][len(b)]
}
