package binfmt

// CheckInterpreters checks each entry's interpreter with one checker, as
// one Apply does, for the benchmarks.
func CheckInterpreters(root string, entries []Entry) ([]string, error) {
	c := newChecker(root)
	var warnings []string
	for _, e := range entries {
		w, err := c.check(e)
		if err != nil {
			return nil, err
		}
		warnings = append(warnings, w...)
	}
	return warnings, nil
}
