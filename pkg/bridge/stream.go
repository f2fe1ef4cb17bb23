package bridge

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"
	"unicode"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/symbridge/symbridge/pkg/subjects"
)

// StreamConfig is the stream the bridge stores events in. The zero value of
// an optional field means "the default".
type StreamConfig struct {
	Name     string   // required, e.g. SYMPHONY
	Subjects []string // default ["symphony.>"]
	// Duplicates is JetStream's deduplication window (default 35 min: it
	// covers the feed's 30-minute life, so any redelivery lands once).
	Duplicates time.Duration
	MaxAge     time.Duration // 0 = keep forever
	Replicas   int           // default 1
	MaxMsgSize int32         // 0 = the server's max payload, -1 = unlimited
	// Storage defaults to file storage (the zero value).
	Storage jetstream.StorageType
}

// Stream defaults.
const (
	DefaultStreamSubject = "symphony.>"
	DefaultDuplicates    = 35 * time.Minute
	// MinDuplicates is the shortest duplicate window that still covers a
	// feed's life; a shorter one is warned about.
	MinDuplicates = 30 * time.Minute
	// MinDuplicateWindow is the shortest duplicate window JetStream accepts.
	MinDuplicateWindow = 100 * time.Millisecond
)

// ErrStreamCoverage is wrapped when a stream does not capture every subject
// the bridge publishes to.
var ErrStreamCoverage = errors.New("stream does not cover the bridge's subjects")

func (c *StreamConfig) setDefaults() {
	if len(c.Subjects) == 0 {
		c.Subjects = []string{DefaultStreamSubject}
	}
	if c.Duplicates == 0 {
		c.Duplicates = DefaultDuplicates
		if c.MaxAge > 0 && c.MaxAge < c.Duplicates {
			c.Duplicates = c.MaxAge
		}
	}
	if c.Replicas == 0 {
		c.Replicas = 1
	}
}

// FieldError is a problem with one field of a [StreamConfig]; Field is the
// Go field's name ("MaxMsgSize"), for a caller to name its own setting.
type FieldError struct {
	Field string
	Err   error
}

func (e *FieldError) Error() string { return "stream " + e.Field + ": " + e.Err.Error() }
func (e *FieldError) Unwrap() error { return e.Err }

// Validate checks the configuration as it is (call it after defaults are
// filled in: [EnsureStream] fills them first). It reports every problem,
// each a [*FieldError], joined.
func (c StreamConfig) Validate() error {
	var errs []error
	bad := func(field, format string, a ...any) {
		errs = append(errs, &FieldError{Field: field, Err: fmt.Errorf(format, a...)})
	}
	if c.Name == "" || strings.ContainsAny(c.Name, ".*>/\\") || strings.ContainsFunc(c.Name, unicode.IsSpace) {
		bad("Name", "must be non-empty without whitespace, '.', '*', '>', '/' or '\\', got %q", c.Name)
	}
	if len(c.Subjects) == 0 {
		bad("Subjects", "required")
	}
	for _, s := range c.Subjects {
		if err := subjects.ValidFilter(s); err != nil {
			bad("Subjects", "%w", err)
		}
	}
	if c.Duplicates < MinDuplicateWindow {
		bad("Duplicates", "must be at least %s, got %s", MinDuplicateWindow, c.Duplicates)
	}
	if c.MaxAge < 0 {
		bad("MaxAge", "must be 0 (unlimited) or positive, got %s", c.MaxAge)
	}
	if c.MaxAge > 0 && c.Duplicates > c.MaxAge {
		bad("Duplicates", "%s must not exceed the maximum age %s", c.Duplicates, c.MaxAge)
	}
	if c.Replicas < 1 || c.Replicas > 5 {
		bad("Replicas", "must be between 1 and 5, got %d", c.Replicas)
	}
	if c.MaxMsgSize < -1 {
		bad("MaxMsgSize", "must be -1 (unlimited), 0 (server default) or positive, got %d", c.MaxMsgSize)
	}
	return errors.Join(errs...)
}

// EnsureStream makes sure the stream exists and captures every subject filter
// in must (for example the Filter of the subject and dead-letter mappers).
// A missing stream is created from cfg. An existing one is verified, never
// updated: an operator may have tuned it, and an update sends a whole
// configuration. It is an error (wrapping [ErrStreamCoverage]) when the
// stream does not cover must; a duplicate window shorter than
// [MinDuplicates] is logged as a warning (redeliveries after it would be
// stored twice), other differences from cfg at info level.
func EnsureStream(ctx context.Context, js jetstream.JetStream, cfg StreamConfig, must []string, logger *slog.Logger) (jetstream.Stream, error) {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	cfg, err := prepare(cfg, must)
	if err != nil {
		return nil, err
	}
	log := logger.With("stream", cfg.Name)

	s, err := js.Stream(ctx, cfg.Name)
	if errors.Is(err, jetstream.ErrStreamNotFound) {
		if missing := uncovered(cfg.Subjects, must); len(missing) > 0 {
			return nil, fmt.Errorf("%w: the stream's subjects %v do not capture %v", ErrStreamCoverage, cfg.Subjects, missing)
		}
		s, err = js.CreateStream(ctx, cfg.jetStream())
		if err == nil {
			log.Info("stream created", "subjects", cfg.Subjects, "duplicates", cfg.Duplicates,
				"max_age", cfg.MaxAge, "replicas", cfg.Replicas, "storage", cfg.Storage.String())
			return s, nil
		}
		if !errors.Is(err, jetstream.ErrStreamNameAlreadyInUse) {
			return nil, fmt.Errorf("create stream %s: %w", cfg.Name, err)
		}
		// Someone created it meanwhile: verify theirs.
		s, err = js.Stream(ctx, cfg.Name)
	}
	if err != nil {
		return nil, fmt.Errorf("look up stream %s: %w", cfg.Name, err)
	}

	r := review(cfg, true, s.CachedInfo().Config, must)
	if len(r.Uncovered) > 0 {
		return nil, fmt.Errorf("%w: stream %s captures %v, not %v; add them to the stream or change the bridge's subject templates",
			ErrStreamCoverage, cfg.Name, r.Subjects, r.Uncovered)
	}
	if r.ShortDuplicates() {
		log.Warn("the stream's duplicate window is shorter than a feed's life: a redelivery after it is stored twice",
			"duplicates", r.Duplicates, "recommended", DefaultDuplicates)
	}
	if r.DiffersFromConfig() {
		log.Info("using the existing stream; its settings differ from the configuration and are left unchanged",
			"replicas", r.Replicas, "storage", r.Storage.String(), "max_age", r.MaxAge,
			"duplicates", r.Duplicates, "max_msg_size", r.MaxMsgSize)
	}
	return s, nil
}

// StreamReport is the bridge's stream as [InspectStream] found it: the
// existing stream's settings, or those [EnsureStream] would create it with.
type StreamReport struct {
	Name string
	// Exists is false when the stream is missing: EnsureStream would create
	// it with the settings below (if the account lets it).
	Exists     bool
	Subjects   []string
	Duplicates time.Duration
	MaxAge     time.Duration
	Replicas   int
	Storage    jetstream.StorageType
	MaxMsgSize int32
	// Uncovered are the filters of must that no subject of the stream
	// captures: EnsureStream refuses such a stream ([ErrStreamCoverage]).
	Uncovered []string
	// Configured is the configuration asked for, defaults filled in.
	Configured StreamConfig
}

// ShortDuplicates reports a duplicate window shorter than [MinDuplicates]:
// a redelivery after it would be stored twice.
func (r StreamReport) ShortDuplicates() bool { return r.Duplicates < MinDuplicates }

// DiffersFromConfig reports an existing stream whose settings are not the
// configured ones (EnsureStream leaves them as they are).
func (r StreamReport) DiffersFromConfig() bool {
	c := r.Configured
	return r.Replicas != c.Replicas || r.Storage != c.Storage || r.MaxAge != c.MaxAge ||
		r.Duplicates != c.Duplicates || !sameMsgSizeLimit(r.MaxMsgSize, c.MaxMsgSize)
}

// jetStream is the configuration EnsureStream creates a missing stream
// with (cfg's defaults filled in).
func (c StreamConfig) jetStream() jetstream.StreamConfig {
	return jetstream.StreamConfig{
		Name:       c.Name,
		Subjects:   c.Subjects,
		Storage:    c.Storage,
		Replicas:   c.Replicas,
		Duplicates: c.Duplicates,
		MaxAge:     c.MaxAge,
		MaxMsgSize: c.MaxMsgSize,
		Retention:  jetstream.LimitsPolicy,
		Discard:    jetstream.DiscardOld,
	}
}

// prepare fills in cfg's defaults and validates it and the filters.
func prepare(cfg StreamConfig, must []string) (StreamConfig, error) {
	cfg.setDefaults()
	if err := cfg.Validate(); err != nil {
		return cfg, err
	}
	for _, f := range must {
		if err := subjects.ValidFilter(f); err != nil {
			return cfg, fmt.Errorf("bridge subject filter: %w", err)
		}
	}
	return cfg, nil
}

// review compares a stream's configuration (got: the existing stream's, or
// cfg.jetStream() for one EnsureStream would create) with cfg (defaults
// filled in) and the filters it must cover.
func review(cfg StreamConfig, exists bool, got jetstream.StreamConfig, must []string) StreamReport {
	return StreamReport{
		Name: cfg.Name, Exists: exists,
		Subjects: got.Subjects, Duplicates: got.Duplicates, MaxAge: got.MaxAge, Replicas: got.Replicas,
		Storage: got.Storage, MaxMsgSize: got.MaxMsgSize,
		Uncovered:  uncovered(got.Subjects, must),
		Configured: cfg,
	}
}

// InspectStream reports on the stream [EnsureStream] would use, by the same
// rules, without creating or changing anything: whether it exists, its
// settings (or those it would be created with), and which filters of must
// it does not cover. Only creating it proves the permission to.
func InspectStream(ctx context.Context, js jetstream.JetStream, cfg StreamConfig, must []string) (StreamReport, error) {
	cfg, err := prepare(cfg, must)
	if err != nil {
		return StreamReport{}, err
	}
	s, err := js.Stream(ctx, cfg.Name)
	if errors.Is(err, jetstream.ErrStreamNotFound) {
		return review(cfg, false, cfg.jetStream(), must), nil
	}
	if err != nil {
		return StreamReport{}, fmt.Errorf("look up stream %s: %w", cfg.Name, err)
	}
	return review(cfg, true, s.CachedInfo().Config, must), nil
}

// sameMsgSizeLimit compares message size limits where 0 (server default) and
// any negative value (the server reports -1) both mean "no limit of the stream's own".
func sameMsgSizeLimit(a, b int32) bool {
	if a <= 0 && b <= 0 {
		return true
	}
	return a == b
}

// uncovered returns the filters in must that no subject of the stream covers.
func uncovered(streamSubjects, must []string) []string {
	var missing []string
	for _, f := range must {
		covered := false
		for _, s := range streamSubjects {
			if subjectCovers(s, f) {
				covered = true
				break
			}
		}
		if !covered {
			missing = append(missing, f)
		}
	}
	return missing
}

// subjectCovers reports whether every subject matched by filter is also
// matched by pattern ("symphony.>" covers "symphony.acme.*.room";
// "symphony.*.x" does not cover "symphony.>"). Both may hold wildcards.
func subjectCovers(pattern, filter string) bool {
	p, f := strings.Split(pattern, "."), strings.Split(filter, ".")
	for i, pt := range p {
		if pt == ">" {
			return i < len(f) // '>' needs at least one more token, f has one
		}
		if i >= len(f) {
			return false
		}
		switch ft := f[i]; {
		case ft == ">":
			return false // matches several tokens; pt covers one at most
		case pt == "*":
			continue // covers a literal token or '*'
		case ft == "*" || ft != pt:
			return false
		}
	}
	return len(p) == len(f)
}
