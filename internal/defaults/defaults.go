// Package defaults fills configuration fields left unset.
package defaults

// Positive returns v when it is positive, else def: for fields whose zero
// value means "the default" and where a negative value means nothing else.
// (Where only zero means "unset", cmp.Or does the job.)
func Positive[T ~int | ~int64 | ~float64](v, def T) T {
	if v > 0 {
		return v
	}
	return def
}
