package bridge

// Unexported helpers the external tests check directly.
var (
	SubjectCovers = subjectCovers
)
