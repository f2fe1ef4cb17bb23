package bridge

// Unexported helpers the external tests check directly.
var (
	RedactURL     = redactURL
	SubjectCovers = subjectCovers
)
