package symphony

import (
	"context"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// ErrAuthUnavailable wraps an authentication failure that is not a
// rejection of the credentials: a 5xx, a 4xx other than 401 (a key manager
// "not registered in the pod" during maintenance), a network error, an
// unparsable answer. It is transient: [Classify] says [ClassRetry]. The BDK
// let such an error escape its retry loop and froze for good
// (finos/symphony-bdk-java#678); here it is never fatal.
var ErrAuthUnavailable = errors.New("authentication not possible right now")

// jwtLifetime is the RSA authentication JWT's exp - now. The pod accepts at
// most 5 minutes; both BDKs use 240 s to absorb clock skew.
const jwtLifetime = 240 * time.Second

// skdMinMajor.skdMinMinor is the first Agent version that supports
// simplified key delivery.
const skdMinMajor, skdMinMinor = 24, 12

type rsaKey = *rsa.PrivateKey

// parseRSAPrivateKey reads the first private key block of a PEM file,
// PKCS#1 or PKCS#8. Its errors never quote the input.
func parseRSAPrivateKey(data []byte) (*rsa.PrivateKey, error) {
	for {
		var block *pem.Block
		block, data = pem.Decode(data)
		if block == nil {
			return nil, errors.New("no PEM private key block found")
		}
		if !strings.HasSuffix(block.Type, "PRIVATE KEY") {
			continue // e.g. a certificate in the same file
		}
		if block.Type == "ENCRYPTED PRIVATE KEY" || strings.Contains(block.Headers["Proc-Type"], "ENCRYPTED") {
			return nil, errors.New("encrypted private keys are not supported; decrypt it first")
		}
		switch block.Type {
		case "RSA PRIVATE KEY":
			key, err := x509.ParsePKCS1PrivateKey(block.Bytes)
			if err != nil {
				return nil, errors.New("not a valid PKCS#1 RSA private key")
			}
			return key, nil
		case "PRIVATE KEY":
			k, err := x509.ParsePKCS8PrivateKey(block.Bytes)
			if err != nil {
				return nil, errors.New("not a valid PKCS#8 private key")
			}
			key, ok := k.(*rsa.PrivateKey)
			if !ok {
				return nil, fmt.Errorf("PKCS#8 key is %T, not RSA", k)
			}
			return key, nil
		default:
			return nil, fmt.Errorf("unsupported PEM block %q (want RSA PRIVATE KEY or PRIVATE KEY)", block.Type)
		}
	}
}

// signJWT builds the RSA authentication token: RS512, claims sub and exp
// only, as the BDKs send.
func (c *Client) signJWT(now time.Time) (string, error) {
	claims := jwt.RegisteredClaims{
		Subject:   c.username,
		ExpiresAt: jwt.NewNumericDate(now.Add(jwtLifetime)),
	}
	s, err := jwt.NewWithClaims(jwt.SigningMethodRS512, claims).SignedString(c.key)
	if err != nil {
		return "", fmt.Errorf("sign authentication JWT: %w", err)
	}
	return s, nil
}

// Authenticate obtains a new session token and, unless simplified key
// delivery applies, a new key manager token. It makes one attempt: a 401 is
// an error wrapping [ErrAuthRejected] (fatal), anything else wraps
// [ErrAuthUnavailable] (transient) or ctx's error.
//
// Calling it is optional: the first authenticated call authenticates, and a
// 401 from the pod or the Agent re-authenticates.
func (c *Client) Authenticate(ctx context.Context) error {
	if err := c.lockAuth(ctx); err != nil {
		return fmt.Errorf("authenticate: %w", err)
	}
	defer c.unlockAuth()
	return c.authenticateLocked(ctx)
}

// SimplifiedKeyDelivery reports whether the current session skips the key
// manager (false before the first authentication).
func (c *Client) SimplifiedKeyDelivery() bool { return c.auth.current().skd }

func (c *Client) lockAuth(ctx context.Context) error {
	select {
	case c.auth.sem <- struct{}{}:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (c *Client) unlockAuth() { <-c.auth.sem }

// ensureSession returns the current session, authenticating first if there
// is none yet.
func (c *Client) ensureSession(ctx context.Context) (session, error) {
	if s := c.auth.current(); s.gen > 0 {
		return s, nil
	}
	if err := c.refresh(ctx, 0); err != nil {
		return session{}, err
	}
	return c.auth.current(), nil
}

// refresh re-authenticates unless someone else did since the caller saw
// generation seen: when several readers get a 401 for the same token, the
// first re-authenticates and the others reuse its tokens.
func (c *Client) refresh(ctx context.Context, seen uint64) error {
	if err := c.lockAuth(ctx); err != nil {
		return fmt.Errorf("authenticate: %w", err)
	}
	defer c.unlockAuth()
	if c.auth.current().gen != seen {
		return nil
	}
	return c.authenticateLocked(ctx)
}

// authenticateLocked runs one authentication; the caller holds the auth
// semaphore.
func (c *Client) authenticateLocked(ctx context.Context) error {
	sessionToken, err := c.sessionToken(ctx)
	if err != nil {
		return err
	}
	skd, infoErr := false, error(nil)
	if skdAllowed(sessionToken) {
		var info AgentInfo
		info, infoErr = c.AgentInfo(ctx)
		if infoErr != nil && ctx.Err() != nil {
			return fmt.Errorf("authenticate: %w", ctx.Err())
		}
		// Like the BDK, an Agent whose version cannot be read gets a key
		// manager token: that works on every Agent.
		skd = infoErr == nil && info.VersionAtLeast(skdMinMajor, skdMinMinor)
	}
	kmToken := ""
	if !skd {
		kmToken, err = c.keyManagerToken(ctx)
		if err != nil {
			if infoErr != nil {
				return fmt.Errorf("%w (simplified key delivery not usable: %v)", err, infoErr)
			}
			return err
		}
	}
	c.auth.mu.Lock()
	c.auth.sess = session{sessionToken: sessionToken, keyManagerToken: kmToken, skd: skd, gen: c.auth.sess.gen + 1}
	c.auth.mu.Unlock()
	return nil
}

func (c *Client) sessionToken(ctx context.Context) (string, error) {
	if c.key == nil {
		return c.fetchToken(ctx, EndpointSessionAuth, "session authentication (certificate)", c.sessionAuth+"/sessionauth/v1/authenticate", true)
	}
	return c.fetchToken(ctx, EndpointPod, "pod authentication", c.pod+"/login/pubkey/authenticate", false)
}

func (c *Client) keyManagerToken(ctx context.Context) (string, error) {
	if c.key == nil {
		return c.fetchToken(ctx, EndpointKeyManager, "key manager authentication (certificate)", c.km+"/keyauth/v1/authenticate", true)
	}
	return c.fetchToken(ctx, EndpointKeyManager, "key manager authentication", c.km+"/relay/pubkey/authenticate", false)
}

// AuthEndpoint names the server an authentication request went to.
type AuthEndpoint string

// Authentication endpoints.
const (
	EndpointPod         AuthEndpoint = "pod"          // RSA: /login/pubkey/authenticate
	EndpointSessionAuth AuthEndpoint = "session auth" // certificate: /sessionauth/v1/authenticate
	EndpointKeyManager  AuthEndpoint = "key manager"  // /relay or /keyauth
)

// AuthError says which endpoint an authentication failed at, for callers
// that report on each server (symbridge check). Its message is Err's; it
// wraps Err, so errors.Is(err, [ErrAuthRejected]) and [Classify] see through it.
type AuthError struct {
	Endpoint AuthEndpoint
	Err      error
}

func (e *AuthError) Error() string { return e.Err.Error() }
func (e *AuthError) Unwrap() error { return e.Err }

// fetchToken POSTs to one authentication endpoint and returns the token of
// its {"name", "token"} answer; its errors are *AuthError naming ep.
func (c *Client) fetchToken(ctx context.Context, ep AuthEndpoint, op, url string, mtls bool) (string, error) {
	tok, err := c.postAuth(ctx, op, url, mtls)
	if err != nil {
		return "", &AuthError{Endpoint: ep, Err: err}
	}
	return tok, nil
}

func (c *Client) postAuth(ctx context.Context, op, url string, mtls bool) (string, error) {
	req := request{op: op, method: http.MethodPost, url: url, mtls: mtls}
	if !mtls {
		jwtStr, err := c.signJWT(time.Now())
		if err != nil {
			return "", fmt.Errorf("%s: %w", op, err)
		}
		req.body = map[string]string{"token": jwtStr}
		req.secret = jwtStr
	}
	resp, err := c.send(ctx, req, session{})
	switch {
	case err == nil:
	case ctx.Err() != nil:
		return "", err
	case isStatus(err, http.StatusUnauthorized):
		return "", fmt.Errorf("%w: %w", ErrAuthRejected, err)
	default:
		return "", fmt.Errorf("%w: %w", ErrAuthUnavailable, err)
	}
	var tok struct {
		Token string `json:"token"`
	}
	if err := decodeJSON(op, resp, &tok); err != nil {
		return "", fmt.Errorf("%w: %w", ErrAuthUnavailable, err)
	}
	if tok.Token == "" {
		return "", fmt.Errorf("%w: %s: %w: no token in the answer", ErrAuthUnavailable, op, ErrBadResponse)
	}
	return tok.Token, nil
}

// skdAllowed reads (without verifying: the client cannot, and need not)
// the session token's canUseSimplifiedKeyDelivery claim. An opaque token
// does not allow it.
func skdAllowed(sessionToken string) bool {
	claims := jwt.MapClaims{}
	if _, _, err := jwt.NewParser().ParseUnverified(sessionToken, claims); err != nil {
		return false
	}
	v, ok := claims["canUseSimplifiedKeyDelivery"].(bool)
	return ok && v
}
