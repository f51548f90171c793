package binfmt

// CheckEach checks each entry's interpreter with one checker, as one
// Apply does, so that directories looked at for one entry are remembered
// for the next.
func CheckEach(root string, entries []Entry) (warnings [][]string, errs []error) {
	c := newChecker(root)
	for _, e := range entries {
		w, err := c.check(e)
		warnings = append(warnings, w)
		errs = append(errs, err)
	}
	return warnings, errs
}
