package inspect

// SetMaxPayload lowers the decompressed payload bound for a test and
// returns a function that restores it.
func SetMaxPayload(n int64) (restore func()) {
	old := maxPayload
	maxPayload = n
	return func() { maxPayload = old }
}
