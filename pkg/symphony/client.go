package symphony

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/go-resty/resty/v2"
)

// Defaults of [ClientConfig]. The timeouts are the BDK's (connectionTimeout
// 15000 ms, readTimeout 60000 ms).
const (
	DefaultConnectTimeout = 15 * time.Second
	DefaultReadTimeout    = 60 * time.Second
	// DefaultMaxBodyBytes caps one response body. A datafeed batch holds many
	// events and one event can carry a large message, so the cap is generous:
	// a body over it is an error that repeats on every read, so it must never
	// be hit by a legitimate batch.
	DefaultMaxBodyBytes int64 = 64 << 20
	DefaultUserAgent          = "symbridge"
	// longPollHold is how long the Agent holds an idle read open. A read
	// timeout at or under it would turn every idle poll into an error.
	longPollHold = 30 * time.Second
	// maxErrorBodyBytes bounds what is read of a non-2xx body: only
	// Symphony's {code, message} is wanted from it.
	maxErrorBodyBytes = 64 << 10
	// maxErrorMessage bounds Symphony's error message kept in an [APIError].
	maxErrorMessage = 200
	// maxHeaderBytes bounds a response's headers. Go's default is 10 MiB;
	// Symphony's headers are a few hundred bytes.
	maxHeaderBytes = 1 << 20
)

// ClientConfig says where the Agent, pod and key manager are and how the bot
// authenticates. Exactly one of PrivateKeyPEM (RSA authentication) and
// Certificate (certificate authentication) must be set.
type ClientConfig struct {
	// Base URLs with scheme, host, port and context path, without the
	// component suffix: the client appends "/login", "/pod", "/agent",
	// "/relay", "/keyauth" and "/sessionauth" itself, as the BDK does. For
	// example "https://acme.symphony.com:443". A trailing slash is ignored.
	PodURL         string
	AgentURL       string
	KeyManagerURL  string
	SessionAuthURL string // certificate authentication only

	// Username is the service account's username: the JWT subject under RSA
	// authentication and the default datahose tag suffix.
	Username string
	// PrivateKeyPEM is the bot's RSA private key, PKCS#1 ("RSA PRIVATE KEY")
	// or PKCS#8 ("PRIVATE KEY") PEM, unencrypted.
	PrivateKeyPEM []byte
	// Certificate is the bot's client certificate, presented (mutual TLS)
	// to the session-auth and key-manager authentication endpoints only.
	Certificate *tls.Certificate

	// RootCAs verifies the servers; nil means the system pool.
	RootCAs *x509.CertPool
	// InsecureSkipVerify turns server certificate verification off. Only
	// for tests against self-signed simulators.
	InsecureSkipVerify bool
	// ProxyURL, e.g. "http://proxy:3128"; empty means the standard
	// HTTP_PROXY/HTTPS_PROXY/NO_PROXY environment variables.
	ProxyURL string

	// ConnectTimeout bounds connecting (TCP and TLS handshake). Default 15 s.
	ConnectTimeout time.Duration
	// ReadTimeout bounds the rest of a request, up to the last byte of the
	// response body, so a server that trickles bytes cannot hold a read
	// forever. It must exceed the Agent's 30 s long poll. Default 60 s.
	ReadTimeout time.Duration
	// MaxBodyBytes caps a response body, after decompression; a larger one
	// is an error wrapping [ErrBadResponse], and a larger Content-Length
	// fails before the body is read. Default 64 MiB.
	MaxBodyBytes int64
	// UserAgent is sent on every request. Default "symbridge".
	UserAgent string
}

// String describes the configuration without its secrets.
func (c ClientConfig) String() string {
	auth := "none"
	switch {
	case len(c.PrivateKeyPEM) > 0 && c.Certificate != nil:
		auth = "rsa+certificate"
	case len(c.PrivateKeyPEM) > 0:
		auth = "rsa"
	case c.Certificate != nil:
		auth = "certificate"
	}
	return fmt.Sprintf("symphony.ClientConfig{pod=%s agent=%s keyManager=%s sessionAuth=%s username=%q auth=%s}",
		c.PodURL, c.AgentURL, c.KeyManagerURL, c.SessionAuthURL, c.Username, auth)
}

// GoString keeps %#v from printing the key material.
func (c ClientConfig) GoString() string { return c.String() }

// Validate checks the configuration and names the offending field.
func (c ClientConfig) Validate() error {
	if err := validateBaseURL("PodURL", c.PodURL); err != nil {
		return err
	}
	if err := validateBaseURL("AgentURL", c.AgentURL); err != nil {
		return err
	}
	if err := validateBaseURL("KeyManagerURL", c.KeyManagerURL); err != nil {
		return err
	}
	if strings.TrimSpace(c.Username) == "" {
		return errors.New("Username: required (the service account's username)")
	}
	switch {
	case len(c.PrivateKeyPEM) > 0 && c.Certificate != nil:
		return errors.New("PrivateKeyPEM, Certificate: set only one (RSA or certificate authentication)")
	case len(c.PrivateKeyPEM) > 0:
		if _, err := parseRSAPrivateKey(c.PrivateKeyPEM); err != nil {
			return fmt.Errorf("PrivateKeyPEM: %w", err)
		}
	case c.Certificate != nil:
		if len(c.Certificate.Certificate) == 0 || c.Certificate.PrivateKey == nil {
			//lint:ignore ST1005 the message starts with the name of the Go field at fault
			return errors.New("Certificate: needs a certificate chain and its private key")
		}
		if err := validateBaseURL("SessionAuthURL", c.SessionAuthURL); err != nil {
			return err
		}
	default:
		return errors.New("PrivateKeyPEM, Certificate: one is required (RSA or certificate authentication)")
	}
	if c.ProxyURL != "" {
		if _, err := parseProxyURL(c.ProxyURL); err != nil {
			return err
		}
	}
	switch {
	case c.ConnectTimeout < 0:
		return fmt.Errorf("ConnectTimeout: must not be negative, got %s", c.ConnectTimeout)
	case c.ReadTimeout < 0:
		return fmt.Errorf("ReadTimeout: must not be negative, got %s", c.ReadTimeout)
	case c.ReadTimeout != 0 && c.ReadTimeout <= longPollHold:
		return fmt.Errorf("ReadTimeout: must exceed the Agent's %s long poll, got %s", longPollHold, c.ReadTimeout)
	case c.MaxBodyBytes < 0:
		return fmt.Errorf("MaxBodyBytes: must not be negative, got %d", c.MaxBodyBytes)
	}
	return nil
}

func validateBaseURL(field, s string) error {
	if s == "" {
		return fmt.Errorf("%s: required", field)
	}
	u, err := url.Parse(s)
	if err != nil {
		return fmt.Errorf("%s: %w", field, err)
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return fmt.Errorf("%s: scheme must be http or https, got %q", field, u.Scheme)
	}
	if u.Host == "" {
		return fmt.Errorf("%s: no host in %q", field, s)
	}
	if u.User != nil {
		return fmt.Errorf("%s: must not carry credentials", field)
	}
	if u.RawQuery != "" || u.Fragment != "" {
		return fmt.Errorf("%s: must not have a query or fragment", field)
	}
	return nil
}

func parseProxyURL(s string) (*url.URL, error) {
	u, err := url.Parse(s)
	if err != nil {
		// url.Parse quotes the input, which may hold a proxy password.
		return nil, errors.New("ProxyURL: not a valid URL")
	}
	if u.Scheme == "" || u.Host == "" {
		return nil, fmt.Errorf("ProxyURL: needs a scheme and a host, got %q", u.Redacted())
	}
	return u, nil
}

// Client talks to the pod, the key manager and the Agent on behalf of one
// bot. It authenticates lazily on first use, re-authenticates once on a 401
// from the pod or the Agent, and is safe for concurrent use.
type Client struct {
	pod, agent, km, sessionAuth string
	username                    string
	key                         rsaKey // nil under certificate authentication

	api      *resty.Client // pod, Agent, key manager relay
	certAuth *resty.Client // mutual TLS; nil under RSA authentication

	timeout time.Duration // whole-request deadline: connect + read
	maxBody int64

	// auth is behind a pointer so that printing a Client value with %v
	// shows an address, not the tokens.
	auth *authState
}

// String names the client without its tokens.
func (c *Client) String() string {
	return fmt.Sprintf("symphony.Client{pod=%s agent=%s username=%q}", c.pod, c.agent, c.username)
}

// GoString keeps %#v, which would print every field, from printing the
// tokens.
func (c *Client) GoString() string { return c.String() }

// NewClient validates cfg and builds a client. It does not contact any
// server: authentication happens on the first call, or explicitly with
// [Client.Authenticate].
func NewClient(cfg ClientConfig) (*Client, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("symphony client: %w", err)
	}
	c := &Client{
		pod:         strings.TrimRight(cfg.PodURL, "/"),
		agent:       strings.TrimRight(cfg.AgentURL, "/"),
		km:          strings.TrimRight(cfg.KeyManagerURL, "/"),
		sessionAuth: strings.TrimRight(cfg.SessionAuthURL, "/"),
		username:    cfg.Username,
		maxBody:     cfg.MaxBodyBytes,
	}
	if c.maxBody == 0 {
		c.maxBody = DefaultMaxBodyBytes
	}
	connect, read := cfg.ConnectTimeout, cfg.ReadTimeout
	if connect == 0 {
		connect = DefaultConnectTimeout
	}
	if read == 0 {
		read = DefaultReadTimeout
	}
	c.timeout = connect + read
	if len(cfg.PrivateKeyPEM) > 0 {
		key, err := parseRSAPrivateKey(cfg.PrivateKeyPEM)
		if err != nil {
			return nil, fmt.Errorf("symphony client: PrivateKeyPEM: %w", err)
		}
		c.key = key
	}
	proxy := http.ProxyFromEnvironment
	if cfg.ProxyURL != "" {
		u, err := parseProxyURL(cfg.ProxyURL)
		if err != nil {
			return nil, fmt.Errorf("symphony client: %w", err)
		}
		proxy = http.ProxyURL(u)
	}
	ua := cfg.UserAgent
	if ua == "" {
		ua = DefaultUserAgent
	}
	tlsCfg := &tls.Config{
		MinVersion:         tls.VersionTLS12,
		RootCAs:            cfg.RootCAs,
		InsecureSkipVerify: cfg.InsecureSkipVerify, //nolint:gosec // only when the operator asks
	}
	c.api = newResty(newTransport(tlsCfg, proxy, connect), ua)
	if cfg.Certificate != nil {
		certTLS := tlsCfg.Clone()
		certTLS.Certificates = []tls.Certificate{*cfg.Certificate}
		c.certAuth = newResty(newTransport(certTLS, proxy, connect), ua)
	}
	c.auth = &authState{sem: make(chan struct{}, 1)}
	return c, nil
}

func newTransport(tlsCfg *tls.Config, proxy func(*http.Request) (*url.URL, error), connect time.Duration) *http.Transport {
	return &http.Transport{
		Proxy:                  proxy,
		DialContext:            (&net.Dialer{Timeout: connect, KeepAlive: 30 * time.Second}).DialContext,
		TLSClientConfig:        tlsCfg,
		TLSHandshakeTimeout:    connect,
		ForceAttemptHTTP2:      true,
		MaxIdleConns:           20, // the BDK's connectionPoolMax
		MaxIdleConnsPerHost:    20,
		IdleConnTimeout:        90 * time.Second,
		ExpectContinueTimeout:  time.Second,
		MaxResponseHeaderBytes: maxHeaderBytes,
	}
}

func newResty(tr *http.Transport, userAgent string) *resty.Client {
	hc := &http.Client{
		Transport: tr,
		// Tokens travel in custom headers that Go does not strip on a
		// cross-host redirect, so redirects are not followed: a 3xx comes
		// back as an APIError.
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
	return resty.NewWithClient(hc).
		SetLogger(discardLogger{}).
		SetDisableWarn(true).
		SetDoNotParseResponse(true). // bodies are read here, capped
		SetHeader("User-Agent", userAgent).
		SetHeader("Accept", "application/json")
}

// discardLogger keeps resty quiet: this package never logs.
type discardLogger struct{}

func (discardLogger) Errorf(string, ...any) {}
func (discardLogger) Warnf(string, ...any)  {}
func (discardLogger) Debugf(string, ...any) {}

// request is one HTTP exchange.
type request struct {
	op     string // for errors, e.g. "read datafeed v2 abc_f"
	method string
	url    string
	query  map[string]string
	body   any // marshalled as JSON when non-nil
	// authed: send the session (and key manager) token, and on a 401
	// re-authenticate once and retry.
	authed bool
	// podOnly: send only the sessionToken header (pod calls).
	podOnly bool
	// mtls: use the client-certificate transport.
	mtls bool
	// secret is sent in the body (the authentication JWT) and must be
	// blanked out should the server echo it in an error message.
	secret string
}

// response is a 2xx answer with its body read (capped).
type response struct {
	status      int
	body        []byte
	contentType string   // as sent, cut to maxContentType bytes
	secrets     []string // to blank out of contentType in an error
}

// maxContentType bounds the Content-Type kept for an error message.
const maxContentType = 100

// describe says what the body was, for the error of a body that does not
// decode, e.g. "HTTP 200, text/html, 1532 bytes": an HTML page from a proxy
// or a login portal is then recognisable without echoing the page.
func (r response) describe() string {
	ct, _, _ := strings.Cut(r.contentType, ";")
	ct = cleanMessage(strings.ToLower(ct), r.secrets)
	if ct == "" {
		ct = "no Content-Type"
	}
	size := "empty body"
	if len(r.body) > 0 {
		size = fmt.Sprintf("%d bytes", len(r.body))
	}
	return fmt.Sprintf("HTTP %d, %s, %s", r.status, ct, size)
}

// do runs req, handling authentication and a single re-authentication on
// a 401. Every error it returns names req.op; a non-2xx answer is an
// *APIError.
func (c *Client) do(ctx context.Context, req request) (response, error) {
	if !req.authed {
		return c.send(ctx, req, session{})
	}
	sess, err := c.ensureSession(ctx)
	if err != nil {
		return response{}, fmt.Errorf("%s: %w", req.op, err)
	}
	resp, err := c.send(ctx, req, sess)
	if !isStatus(err, http.StatusUnauthorized) {
		return resp, err
	}
	if err := c.refresh(ctx, sess.gen); err != nil {
		return response{}, fmt.Errorf("%s: re-authenticating after HTTP 401: %w", req.op, err)
	}
	return c.send(ctx, req, c.auth.current())
}

// send runs one exchange. The whole exchange, body included, is bounded by
// c.timeout; ctx ending aborts it at once.
func (c *Client) send(ctx context.Context, req request, sess session) (response, error) {
	rctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	hc := c.api
	if req.mtls {
		hc = c.certAuth
	}
	r := hc.R().SetContext(rctx)
	if req.query != nil {
		r.SetQueryParams(req.query)
	}
	if req.body != nil {
		b, err := json.Marshal(req.body)
		if err != nil {
			return response{}, fmt.Errorf("%s: encode request: %w", req.op, err)
		}
		r.SetHeader("Content-Type", "application/json").SetBody(b)
	}
	if req.authed {
		r.SetHeader("sessionToken", sess.sessionToken)
		if !req.podOnly && sess.keyManagerToken != "" {
			r.SetHeader("keyManagerToken", sess.keyManagerToken)
		}
	}
	res, err := r.Execute(req.method, req.url)
	var raw *http.Response
	if res != nil {
		raw = res.RawResponse
	}
	if raw != nil && raw.Body != nil {
		defer raw.Body.Close()
	}
	if err != nil || raw == nil {
		if err == nil {
			err = errors.New("no response")
		}
		return response{}, c.transportError(ctx, rctx, req.op, err)
	}
	secrets := []string{sess.sessionToken, sess.keyManagerToken, req.secret}
	if raw.StatusCode < 200 || raw.StatusCode > 299 {
		body, _ := io.ReadAll(io.LimitReader(raw.Body, maxErrorBodyBytes))
		return response{}, c.apiError(req.op, raw, body, secrets...)
	}
	body, err := readBody(raw.Body, raw.ContentLength, c.maxBody)
	switch {
	case errors.Is(err, errBodyTooLarge):
		return response{}, fmt.Errorf("%s: %w: %w", req.op, ErrBadResponse, err)
	case err != nil && (ctx.Err() != nil || rctx.Err() != nil):
		return response{}, c.transportError(ctx, rctx, req.op, err)
	case err != nil:
		return response{}, fmt.Errorf("%s: %w: reading body: %w", req.op, ErrBadResponse, err)
	}
	ct := raw.Header.Get("Content-Type")
	if len(ct) > maxContentType {
		ct = ct[:maxContentType]
	}
	return response{status: raw.StatusCode, body: body, contentType: ct, secrets: secrets}, nil
}

// errBodyTooLarge: a 2xx body over MaxBodyBytes.
var errBodyTooLarge = errors.New("body exceeds MaxBodyBytes")

// readBody reads a 2xx body of at most limit bytes. A declared length over
// the limit fails before anything is read; a declared length within it is
// read into one buffer of that size. A body of unknown length (chunked, as
// the Agent sends large batches, or decompressed by the transport) is read
// in chunks and copied once into a buffer of its size: at most twice the
// body, plus one chunk.
func readBody(r io.Reader, declared, limit int64) ([]byte, error) {
	if declared > limit {
		return nil, fmt.Errorf("%w: Content-Length %d, limit %d", errBodyTooLarge, declared, limit)
	}
	if declared >= 0 {
		body := make([]byte, declared)
		if _, err := io.ReadFull(r, body); err != nil {
			return nil, err
		}
		return body, nil
	}
	return readChunked(io.LimitReader(r, limit+1), limit)
}

// Chunk sizes of readChunked: an idle poll's empty batch fits the first.
const (
	firstChunk = 1 << 10
	maxChunk   = 1 << 20
)

// readChunked reads r to its end in chunks that double from firstChunk to
// maxChunk. Unlike io.ReadAll, whose chunks grow by half each time so the
// last may be a third unused, the chunks exceed the body by less than
// maxChunk.
func readChunked(r io.Reader, limit int64) ([]byte, error) {
	var chunks [][]byte
	total := 0
	buf := make([]byte, 0, firstChunk)
	for {
		n, err := r.Read(buf[len(buf):cap(buf)])
		buf = buf[:len(buf)+n]
		total += n
		if int64(total) > limit {
			return nil, fmt.Errorf("%w: more than %d bytes", errBodyTooLarge, limit)
		}
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, err
		}
		if len(buf) == cap(buf) {
			chunks = append(chunks, buf)
			buf = make([]byte, 0, min(2*cap(buf), maxChunk))
		}
	}
	if len(chunks) == 0 {
		return buf, nil
	}
	body := make([]byte, 0, total)
	for _, c := range chunks {
		body = append(body, c...)
	}
	return append(body, buf...), nil
}

// transportError words a failed exchange: the caller's cancellation stays
// recognisable (errors.Is context.Canceled), the request deadline says so.
func (c *Client) transportError(ctx, rctx context.Context, op string, err error) error {
	switch {
	case ctx.Err() != nil:
		return fmt.Errorf("%s: %w", op, ctx.Err())
	case errors.Is(rctx.Err(), context.DeadlineExceeded):
		return fmt.Errorf("%s: no complete response within %s: %w", op, c.timeout, err)
	}
	return fmt.Errorf("%s: %w", op, err)
}

// apiError builds the *APIError of a non-2xx answer. Symphony's message is
// kept (truncated, single line) with any token of ours blanked out, in case
// a server echoes a header back.
func (c *Client) apiError(op string, raw *http.Response, body []byte, secrets ...string) *APIError {
	e := &APIError{Op: op, StatusCode: raw.StatusCode, RetryAfter: parseRetryAfter(raw.Header.Get("Retry-After"), time.Now())}
	var v struct {
		Code    json.Number `json:"code"`
		Message string      `json:"message"`
	}
	if json.Unmarshal(body, &v) == nil {
		if n, err := v.Code.Int64(); err == nil {
			e.Code = int(n)
		}
		e.Message = cleanMessage(v.Message, secrets)
	}
	return e
}

// cleanMessage makes a server's message fit for an error: secrets
// blanked out, on one line, at most maxErrorMessage characters.
func cleanMessage(msg string, secrets []string) string {
	if len(msg) > maxRedactInput {
		msg = msg[:maxRedactInput]
	}
	msg = redact(msg, secrets)
	msg = strings.Join(strings.Fields(msg), " ")
	if utf8.RuneCountInString(msg) > maxErrorMessage {
		msg = string([]rune(msg)[:maxErrorMessage]) + "..."
	}
	return msg
}

// Redaction of secrets echoed by a server. A server may echo a token cut,
// split or prefixed, so not only whole secrets are blanked out but every run
// of the message covered by redactWindow-byte pieces of a secret; a secret
// shorter than the window (but not shorter than minRedactable, which would
// match ordinary words) is replaced where it appears whole.
const (
	redactWindow   = 12
	minRedactable  = 8
	maxRedactInput = 8 << 10 // the message is cut to this before redaction
	redacted       = "[redacted]"
)

func redact(msg string, secrets []string) string {
	windows := map[string]struct{}{}
	for _, s := range secrets {
		switch {
		case len(s) >= redactWindow:
			for i := 0; i+redactWindow <= len(s); i++ {
				windows[s[i:i+redactWindow]] = struct{}{}
			}
		case len(s) >= minRedactable:
			msg = strings.ReplaceAll(msg, s, redacted)
		}
	}
	if len(windows) == 0 || len(msg) < redactWindow {
		return msg
	}
	var b strings.Builder
	hidden := -1 // end of the run being blanked out; -1: none
	for i := 0; i < len(msg); i++ {
		if i+redactWindow <= len(msg) {
			if _, ok := windows[msg[i:i+redactWindow]]; ok {
				if hidden < i {
					b.WriteString(redacted)
				}
				hidden = i + redactWindow
			}
		}
		if i >= hidden {
			b.WriteByte(msg[i])
		}
	}
	return b.String()
}

// parseRetryAfter reads a Retry-After header: delay-seconds or an HTTP date.
func parseRetryAfter(v string, now time.Time) time.Duration {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0
	}
	if n, err := strconv.ParseInt(v, 10, 64); err == nil {
		if n <= 0 {
			return 0
		}
		if n > int64(24*time.Hour/time.Second) {
			n = int64(24 * time.Hour / time.Second)
		}
		return time.Duration(n) * time.Second
	}
	if t, err := http.ParseTime(v); err == nil && t.After(now) {
		return t.Sub(now)
	}
	return 0
}

// isStatus reports whether err is an *APIError with the given status.
func isStatus(err error, status int) bool {
	var apiErr *APIError
	return errors.As(err, &apiErr) && apiErr.StatusCode == status
}

// decodeJSON decodes a 2xx body; a body that does not decode wraps
// [ErrBadResponse].
func decodeJSON(op string, resp response, v any) error {
	dec := json.NewDecoder(bytes.NewReader(resp.body))
	if err := dec.Decode(v); err != nil {
		return fmt.Errorf("%s: %w: %w (%s)", op, ErrBadResponse, err, resp.describe())
	}
	if _, err := dec.Token(); err != io.EOF {
		return fmt.Errorf("%s: %w: trailing data after the JSON value (%s)", op, ErrBadResponse, resp.describe())
	}
	return nil
}

// AgentInfo is what GET /agent/v1/info says about the Agent.
type AgentInfo struct {
	Version  string `json:"version"` // e.g. "Agent-25.8.1-..."
	URL      string `json:"url"`
	Hostname string `json:"hostname"`
	OnPrem   bool   `json:"onPrem"`
}

// VersionAtLeast reports whether Version ("Agent-<major>.<minor>...") is at
// least major.minor. An unparsable version is not.
func (a AgentInfo) VersionAtLeast(major, minor int) bool {
	ma, mi, ok := parseAgentVersion(a.Version)
	return ok && (ma > major || ma == major && mi >= minor)
}

// agentVersionRE is the BDK's pattern for GET /agent/v1/info's version.
var agentVersionRE = regexp.MustCompile(`^Agent-(\d{1,6})\.(\d{1,6})`)

// parseAgentVersion reads "Agent-<major>.<minor>...".
func parseAgentVersion(v string) (major, minor int, ok bool) {
	m := agentVersionRE.FindStringSubmatch(v)
	if m == nil {
		return 0, 0, false
	}
	major, _ = strconv.Atoi(m[1]) // at most 6 digits: cannot fail
	minor, _ = strconv.Atoi(m[2])
	return major, minor, true
}

// AgentInfo reads GET {agent}/agent/v1/info. It needs no authentication.
func (c *Client) AgentInfo(ctx context.Context) (AgentInfo, error) {
	const op = "agent info"
	resp, err := c.do(ctx, request{op: op, method: http.MethodGet, url: c.agent + "/agent/v1/info"})
	if err != nil {
		return AgentInfo{}, err
	}
	var info AgentInfo
	if err := decodeJSON(op, resp, &info); err != nil {
		return AgentInfo{}, err
	}
	return info, nil
}

// UserInfo is the bot's own account, from GET /pod/v2/sessioninfo.
type UserInfo struct {
	ID          int64  `json:"id"`
	Username    string `json:"username"`
	DisplayName string `json:"displayName"`
}

// SessionInfo reads GET {pod}/pod/v2/sessioninfo: the bot's user id (to
// recognise events the bot caused itself) and username.
func (c *Client) SessionInfo(ctx context.Context) (UserInfo, error) {
	const op = "session info"
	resp, err := c.do(ctx, request{op: op, method: http.MethodGet, url: c.pod + "/pod/v2/sessioninfo", authed: true, podOnly: true})
	if err != nil {
		return UserInfo{}, err
	}
	var u UserInfo
	if err := decodeJSON(op, resp, &u); err != nil {
		return UserInfo{}, err
	}
	return u, nil
}

// Username is the configured service account username.
func (c *Client) Username() string { return c.username }

// AgentURL is the configured Agent base URL (without "/agent").
func (c *Client) AgentURL() string { return c.agent }

// authState holds the current tokens. sem serialises authentication (a
// channel, so a waiter can give up when its ctx ends); gen counts successful
// authentications so that of several readers hit by the same 401 only the
// first re-authenticates.
type authState struct {
	sem  chan struct{}
	mu   sync.Mutex
	sess session
}

type session struct {
	sessionToken    string
	keyManagerToken string // empty under simplified key delivery
	skd             bool
	gen             uint64 // 0 = never authenticated
}

func (a *authState) current() session {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.sess
}
