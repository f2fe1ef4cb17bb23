package spec

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"sync"

	"github.com/getkin/kin-openapi/openapi2"
	"github.com/getkin/kin-openapi/openapi2conv"
	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/getkin/kin-openapi/routers"
	"github.com/getkin/kin-openapi/routers/gorillamux"

	"github.com/symbridge/symbridge/pkg/symphony/symphonytest/internal/exempt"
)

// Spec files [NewValidator] loads, relative to the spec directory (a copy
// of finos/symphony-api-spec).
const (
	SpecAgent           = "agent/agent-api-public.yaml"
	SpecAgentDeprecated = "agent/agent-api-public-deprecated.yaml"
	SpecLogin           = "login/login-api-public.yaml"
	SpecAuthenticator   = "authenticator/authenticator-api-public.yaml"
)

// The spec files list paths without their context prefix; clients add it
// (finos/symphony-bdk-java ApiClientFactory). These are the prefixes each
// file is served under, and so the server URLs the validator gives them.
var specServers = map[string][]string{
	SpecAgent:           {"/agent"},
	SpecAgentDeprecated: {"/agent"},
	SpecLogin:           {"/login", "/relay"},
	SpecAuthenticator:   {"/sessionauth", "/keyauth"},
}

// Exemptions lists, for the record, everything a [Validator] does not
// check. Nothing else is skipped.
var Exemptions = []string{
	"responses produced or altered by fault injection (the Agent marks them; header " + exempt.FaultHeader + ")",
	"responses carrying events emitted with Agent.EmitMalformed",
	"GET /pod/v2/sessioninfo: the pod API spec is not among the supplied files",
	"the body of a 204 response: HTTP forbids one, though the spec attaches V2Error to deleteDatafeed's 204",
	"authentication schemes (openapi3filter.NoopAuthenticationFunc); the sessionToken header is still required where the spec says so",
	"events without \"id\" pass the strict event schema (Symphony sends such events)",
}

// unspecified lists the endpoints the simulator serves that no supplied
// spec file describes. They are counted, never validated.
var unspecified = map[string]string{
	"GET /pod/v2/sessioninfo": "the pod API spec is not among the supplied files",
}

// Failure is one request or response that does not match the spec.
type Failure struct {
	Method string
	Path   string
	// Status is the response status; 0 when the request itself failed.
	Status int
	Err    error
}

func (f Failure) Error() string {
	if f.Status == 0 {
		return fmt.Sprintf("request %s %s: %v", f.Method, f.Path, f.Err)
	}
	return fmt.Sprintf("response %d to %s %s: %v", f.Status, f.Method, f.Path, f.Err)
}

func (f Failure) Unwrap() error { return f.Err }

// ValidatorStats counts what a [Validator] saw.
type ValidatorStats struct {
	Requests    int64            // requests validated
	Responses   int64            // responses validated
	Events      int64            // events checked against the strict event schema
	Exempt      map[string]int64 // responses skipped, by reason (injected faults...)
	Unspecified int64            // requests to endpoints no supplied spec describes
	Failures    int64
}

// Validator checks requests, responses and events against the OpenAPI files
// of finos/symphony-api-spec with kin-openapi's openapi3filter, plus the
// strict event schema ([StrictEventSchema]). Authentication schemes are not
// checked. It is safe for concurrent use.
//
// The only exemptions are listed: responses produced by fault injection or
// carrying events emitted with symphonytest's Agent.EmitMalformed (marked by the Agent),
// endpoints no supplied spec covers (/pod/v2/sessioninfo), and the body of a
// 204, which HTTP forbids although the spec attaches a schema to the delete
// endpoint's 204.
//
// A nil *Validator checks nothing (see [ForTest]): its Middleware and
// RoundTripper pass everything through, it records no failures, and
// ValidateEvent applies the strict event schema only, which the repository
// holds.
type Validator struct {
	routers []routers.Router
	agent   *openapi3.T
	opts    openapi3filter.Options

	mu       sync.Mutex
	failures []Failure
	stats    ValidatorStats
}

// NewValidator loads the agent (public and deprecated), login and
// authenticator spec files from specDir. Parsed specs are cached per
// directory, so creating a Validator per test is cheap.
func NewValidator(specDir string) (*Validator, error) {
	set, err := loadSpecSet(specDir)
	if err != nil {
		return nil, err
	}
	v := &Validator{routers: set.routers, agent: set.agent, opts: openapi3filter.Options{
		AuthenticationFunc:    openapi3filter.NoopAuthenticationFunc,
		IncludeResponseStatus: true,
		MultiError:            true,
	}}
	v.stats.Exempt = make(map[string]int64)
	return v, nil
}

// specSet is the parsed spec files of one directory; read-only once built.
type specSet struct {
	routers []routers.Router
	agent   *openapi3.T
}

var (
	specCacheMu sync.Mutex
	specCache   = map[string]*specSet{}
)

func loadSpecSet(specDir string) (*specSet, error) {
	dir, err := filepath.Abs(specDir)
	if err != nil {
		return nil, fmt.Errorf("spec: directory: %w", err)
	}
	specCacheMu.Lock()
	defer specCacheMu.Unlock()
	if set, ok := specCache[dir]; ok {
		return set, nil
	}
	set := &specSet{}
	for _, name := range []string{SpecAgent, SpecAgentDeprecated, SpecLogin, SpecAuthenticator} {
		doc, err := loadSpec(context.Background(), filepath.Join(dir, filepath.FromSlash(name)))
		if err != nil {
			return nil, fmt.Errorf("spec: %s: %w", name, err)
		}
		doc.Servers = nil
		for _, prefix := range specServers[name] {
			doc.Servers = append(doc.Servers, &openapi3.Server{URL: prefix})
		}
		r, err := gorillamux.NewRouter(doc)
		if err != nil {
			return nil, fmt.Errorf("spec: %s: router: %w", name, err)
		}
		set.routers = append(set.routers, r)
		if name == SpecAgent {
			set.agent = doc
		}
	}
	specCache[dir] = set
	return set, nil
}

// loadSpec loads an OpenAPI 3 file, or a Swagger 2 file converted to
// OpenAPI 3, and validates it.
func loadSpec(ctx context.Context, path string) (*openapi3.T, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read: %w", err)
	}
	var doc *openapi3.T
	if bytes.Contains(data[:min(len(data), 200)], []byte("swagger:")) {
		var doc2 openapi2.T
		if err := openapi2.UnmarshalFromData(data, &doc2); err != nil {
			return nil, fmt.Errorf("parse swagger 2: %w", err)
		}
		if doc, err = openapi2conv.ToV3(&doc2); err != nil {
			return nil, fmt.Errorf("convert to OpenAPI 3: %w", err)
		}
	} else {
		loader := openapi3.NewLoader()
		if doc, err = loader.LoadFromData(data); err != nil {
			return nil, fmt.Errorf("parse: %w", err)
		}
	}
	if err := doc.Validate(ctx); err != nil {
		return nil, fmt.Errorf("invalid spec: %w", err)
	}
	return doc, nil
}

// Failures returns every failure recorded so far.
func (v *Validator) Failures() []Failure {
	if v == nil {
		return nil
	}
	v.mu.Lock()
	defer v.mu.Unlock()
	return append([]Failure(nil), v.failures...)
}

// Stats returns the counters.
func (v *Validator) Stats() ValidatorStats {
	if v == nil {
		return ValidatorStats{}
	}
	v.mu.Lock()
	defer v.mu.Unlock()
	s := v.stats
	s.Exempt = make(map[string]int64, len(v.stats.Exempt))
	for k, n := range v.stats.Exempt {
		s.Exempt[k] = n
	}
	return s
}

func (v *Validator) fail(report func(Failure), f Failure) {
	v.mu.Lock()
	v.failures = append(v.failures, f)
	v.stats.Failures++
	v.mu.Unlock()
	if report != nil {
		report(f)
	}
}

func (v *Validator) count(fn func(s *ValidatorStats)) {
	v.mu.Lock()
	fn(&v.stats)
	v.mu.Unlock()
}

// findRoute finds the operation of r in the spec files, in order (the
// public agent file before the deprecated superset).
func (v *Validator) findRoute(r *http.Request) (*routers.Route, map[string]string, error) {
	var lastErr error = routers.ErrPathNotFound
	for _, router := range v.routers {
		route, params, err := router.FindRoute(r)
		if err == nil {
			return route, params, nil
		}
		if !errors.Is(err, routers.ErrPathNotFound) {
			lastErr = err
		}
	}
	return nil, nil, lastErr
}

// maxValidatedBody caps what the validator buffers of one body.
const maxValidatedBody = 64 << 20

// validateRequest checks r (whose body is given separately) and returns the
// validation input for the response, or nil when r is not validated.
func (v *Validator) validateRequest(r *http.Request, body []byte, report func(Failure)) *openapi3filter.RequestValidationInput {
	if _, ok := unspecified[r.Method+" "+r.URL.Path]; ok {
		v.count(func(s *ValidatorStats) { s.Unspecified++ })
		return nil
	}
	route, params, err := v.findRoute(r)
	if err != nil {
		v.fail(report, Failure{Method: r.Method, Path: r.URL.Path, Err: fmt.Errorf("no such operation in the spec: %w", err)})
		return nil
	}
	vr := r.Clone(r.Context())
	vr.Body = io.NopCloser(bytes.NewReader(body))
	in := &openapi3filter.RequestValidationInput{Request: vr, PathParams: params, Route: route, Options: &v.opts}
	v.count(func(s *ValidatorStats) { s.Requests++ })
	if err := openapi3filter.ValidateRequest(r.Context(), in); err != nil {
		v.fail(report, Failure{Method: r.Method, Path: r.URL.Path, Err: err})
	}
	return in
}

// validateResponse checks one response, and every event it carries against
// the strict event schema.
func (v *Validator) validateResponse(in *openapi3filter.RequestValidationInput, status int, header http.Header, body []byte, report func(Failure)) {
	r := in.Request
	opts := v.opts
	if status == http.StatusNoContent {
		opts.ExcludeResponseBody = true // HTTP: a 204 has no content
	}
	out := &openapi3filter.ResponseValidationInput{RequestValidationInput: in, Status: status, Header: header, Options: &opts}
	out.SetBodyBytes(body)
	v.count(func(s *ValidatorStats) { s.Responses++ })
	if err := openapi3filter.ValidateResponse(r.Context(), out); err != nil {
		v.fail(report, Failure{Method: r.Method, Path: r.URL.Path, Status: status, Err: err})
	}
	if status != http.StatusOK {
		return
	}
	var events []json.RawMessage
	switch in.Route.Path {
	case "/v5/datafeeds/{datafeedId}/read", "/v5/events/read":
		var list struct {
			Events []json.RawMessage `json:"events"`
		}
		if json.Unmarshal(body, &list) != nil {
			return // already reported by the schema check
		}
		events = list.Events
	case "/v4/datafeed/{id}/read":
		if json.Unmarshal(body, &events) != nil {
			return
		}
	default:
		return
	}
	for i, e := range events {
		v.count(func(s *ValidatorStats) { s.Events++ })
		if err := CheckEvent(e); err != nil && !errors.Is(err, ErrEventWithoutID) {
			v.fail(report, Failure{Method: r.Method, Path: r.URL.Path, Status: status,
				Err: fmt.Errorf("event %d: %w", i, err)})
		}
	}
}

func (v *Validator) exempt(reason string) {
	v.count(func(s *ValidatorStats) { s.Exempt[reason]++ })
}

// Middleware validates every request to next and every response next
// gives. Failures are recorded (see [Validator.Failures]) and passed to
// report when it is not nil; report may be called from handler goroutines.
// Responses the Agent marks (injected faults, deliberately malformed events)
// are exempt.
func (v *Validator) Middleware(next http.Handler, report func(Failure)) http.Handler {
	if v == nil {
		return next
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(io.LimitReader(r.Body, maxValidatedBody))
		if err != nil {
			v.fail(report, Failure{Method: r.Method, Path: r.URL.Path, Err: fmt.Errorf("read request body: %w", err)})
		}
		r.Body = io.NopCloser(bytes.NewReader(body))
		in := v.validateRequest(r, body, report)
		r.Body = io.NopCloser(bytes.NewReader(body))
		r, exemptReason := exempt.Track(r)
		rec := &recorder{ResponseWriter: w}
		next.ServeHTTP(rec, r)
		if in == nil {
			return
		}
		if reason, ok := exemptReason(); ok {
			v.exempt(reason)
			return
		}
		if rec.status == 0 && !rec.wrote {
			return // the handler answered nothing: the client went away
		}
		status := rec.status
		if status == 0 {
			status = http.StatusOK
		}
		v.validateResponse(in, status, w.Header().Clone(), rec.body.Bytes(), report)
	})
}

// recorder copies what a handler writes while passing it through.
type recorder struct {
	http.ResponseWriter
	status int
	wrote  bool
	body   bytes.Buffer
}

func (rec *recorder) WriteHeader(status int) {
	if rec.status == 0 {
		rec.status = status
	}
	rec.ResponseWriter.WriteHeader(status)
}

func (rec *recorder) Write(p []byte) (int, error) {
	rec.wrote = true
	if rec.body.Len()+len(p) <= maxValidatedBody {
		rec.body.Write(p)
	}
	return rec.ResponseWriter.Write(p)
}

// Unwrap lets http.ResponseController reach Flush and Hijack.
func (rec *recorder) Unwrap() http.ResponseWriter { return rec.ResponseWriter }

// RoundTripper validates, on the client side, every request sent through
// next and every response received (next nil: http.DefaultTransport).
// Responses carrying the fault header (symphonytest.FaultHeader) are exempt; a connection reset leaves
// nothing to validate. It reads each validated response body whole before
// returning it.
func (v *Validator) RoundTripper(next http.RoundTripper, report func(Failure)) http.RoundTripper {
	if next == nil {
		next = http.DefaultTransport
	}
	if v == nil {
		return next
	}
	return roundTripFunc(func(req *http.Request) (*http.Response, error) {
		var body []byte
		if req.Body != nil {
			b, err := io.ReadAll(io.LimitReader(req.Body, maxValidatedBody))
			_ = req.Body.Close()
			if err != nil {
				return nil, fmt.Errorf("validator: read request body: %w", err)
			}
			body = b
			req = req.Clone(req.Context())
			req.Body = io.NopCloser(bytes.NewReader(body))
			req.GetBody = func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(body)), nil }
		}
		in := v.validateRequest(req, body, report)
		if req.Body != nil {
			req.Body = io.NopCloser(bytes.NewReader(body))
		}
		resp, err := next.RoundTrip(req)
		if err != nil || in == nil {
			return resp, err
		}
		if kind := resp.Header.Get(exempt.FaultHeader); kind != "" {
			v.exempt("injected fault: " + kind)
			return resp, nil
		}
		data, err := io.ReadAll(io.LimitReader(resp.Body, maxValidatedBody))
		_ = resp.Body.Close()
		resp.Body = io.NopCloser(bytes.NewReader(data))
		if err != nil {
			return resp, nil // the client sees the same error when it reads
		}
		v.validateResponse(in, resp.StatusCode, resp.Header, data, report)
		return resp, nil
	})
}

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

// ValidateSchema validates a JSON document against a component schema of
// the agent spec (e.g. "V5EventList", "V4EventList", "V5Datafeed",
// "AgentInfo"); a "[]" prefix validates an array of it ("[]V5Datafeed").
func (v *Validator) ValidateSchema(name string, body []byte) error {
	if v == nil {
		return fmt.Errorf("spec: no spec files loaded (nil Validator) to validate %s", name)
	}
	array := false
	if len(name) > 2 && name[:2] == "[]" {
		array, name = true, name[2:]
	}
	ref := v.agent.Components.Schemas[name]
	if ref == nil || ref.Value == nil {
		return fmt.Errorf("spec: no schema %q in %s", name, SpecAgent)
	}
	schema := ref.Value
	if array {
		schema = openapi3.NewArraySchema().WithItems(schema)
	}
	val, err := decodeJSON(body)
	if err != nil {
		return err
	}
	if err := schema.VisitJSON(val, openapi3.MultiErrors()); err != nil {
		return fmt.Errorf("does not match %s: %w", name, err)
	}
	return nil
}

// ValidateEvent validates one event against the spec's V4Event and the
// strict event schema; see [CheckEvent] for events without id. A nil
// Validator applies the strict schema only.
func (v *Validator) ValidateEvent(raw []byte) error {
	if v == nil {
		return CheckEvent(raw)
	}
	if err := v.ValidateSchema("V4Event", raw); err != nil {
		return err
	}
	return CheckEvent(raw)
}
