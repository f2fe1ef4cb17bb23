package symphonytest

import (
	"encoding/hex"
	"errors"
	"fmt"
	"hash/fnv"
	"net/http"
	"strings"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

type tokenKind int

const (
	tokenSession tokenKind = iota // pod: header sessionToken
	tokenKM                       // key manager: header keyManagerToken
)

func (k tokenKind) headerName() string {
	if k == tokenKM {
		return "keyManagerToken"
	}
	return "sessionToken"
}

type session struct {
	account string
	kind    tokenKind
	expires time.Time // zero: never
	expired bool      // set by ExpireSessions or an injected fault
}

func (s *session) valid(now time.Time) bool {
	return !s.expired && (s.expires.IsZero() || now.Before(s.expires))
}

// errUnauthorized carries the reason a login is refused; the reason names
// the rule that failed, never the token.
var errUnauthorized = errors.New("unauthorized")

// verifyLoginJWT checks a login JWT the way the pod documents it: RS512,
// signed with the account's public key, sub = username, exp present, in the
// future and at most 5 minutes ahead. It returns the account (the sub).
func (a *Agent) verifyLoginJWT(raw string, now time.Time) (string, error) {
	if raw == "" {
		return "", fmt.Errorf("%w: no token", errUnauthorized)
	}
	claims := &jwt.RegisteredClaims{}
	parser := jwt.NewParser(jwt.WithValidMethods([]string{"RS512"}), jwt.WithExpirationRequired(),
		jwt.WithTimeFunc(func() time.Time { return now }))
	if a.cfg.PublicKey != nil {
		if _, err := parser.ParseWithClaims(raw, claims, func(*jwt.Token) (any, error) {
			return a.cfg.PublicKey, nil
		}); err != nil {
			return "", fmt.Errorf("%w: invalid JWT: %w", errUnauthorized, err)
		}
	} else {
		tok, _, err := parser.ParseUnverified(raw, claims)
		if err != nil {
			return "", fmt.Errorf("%w: malformed JWT: %w", errUnauthorized, err)
		}
		if tok.Method.Alg() != "RS512" {
			return "", fmt.Errorf("%w: JWT algorithm must be RS512", errUnauthorized)
		}
		if claims.ExpiresAt == nil || !now.Before(claims.ExpiresAt.Time) {
			return "", fmt.Errorf("%w: JWT expired or without exp", errUnauthorized)
		}
	}
	// exp has a one-second resolution: allow that much rounding.
	if claims.ExpiresAt.Sub(now) > MaxJWTLifetime+time.Second {
		return "", fmt.Errorf("%w: JWT exp is more than %v ahead", errUnauthorized, MaxJWTLifetime)
	}
	if claims.Subject == "" {
		return "", fmt.Errorf("%w: JWT has no sub", errUnauthorized)
	}
	if a.cfg.Username != "" && claims.Subject != a.cfg.Username {
		return "", fmt.Errorf("%w: unknown user", errUnauthorized)
	}
	return claims.Subject, nil
}

// issueToken records a new token for account. Session tokens are JWTs (as
// Symphony's are) carrying sub, userId and canUseSimplifiedKeyDelivery;
// key-manager tokens are opaque hex.
func (a *Agent) issueToken(kind tokenKind, account string, now time.Time) string {
	var tok string
	if kind == tokenSession {
		claims := jwt.MapClaims{
			"sub":                         account,
			"userId":                      a.userID(account),
			"iat":                         now.Unix(),
			"jti":                         hex.EncodeToString(randomBytes(8)),
			"canUseSimplifiedKeyDelivery": a.cfg.SKD,
		}
		if a.cfg.SessionTTL > 0 {
			claims["exp"] = now.Add(a.cfg.SessionTTL).Unix()
		}
		signed, err := jwt.NewWithClaims(jwt.SigningMethodHS512, claims).SignedString(a.secret)
		if err != nil { // cannot happen with an HMAC key; fall back to opaque
			signed = hex.EncodeToString(randomBytes(64))
		}
		tok = signed
	} else {
		tok = hex.EncodeToString(randomBytes(64))
	}
	s := &session{account: account, kind: kind}
	if a.cfg.SessionTTL > 0 {
		s.expires = now.Add(a.cfg.SessionTTL)
	}
	a.mu.Lock()
	a.sessions[tok] = s
	a.stats.SessionsIssued++
	if kind == tokenSession {
		a.stats.Auths++
	} else {
		a.stats.KMAuths++
	}
	a.mu.Unlock()
	return tok
}

// userID is the bot's user id: Config.UserID for the configured account,
// else a stable 15-digit id derived from the account name (real Symphony
// user ids do not fit in 32 bits).
func (a *Agent) userID(account string) int64 {
	if a.cfg.UserID != 0 && (a.cfg.Username == "" || account == a.cfg.Username) {
		return a.cfg.UserID
	}
	h := fnv.New32a()
	_, _ = h.Write([]byte(account))
	return 349026222340000 + int64(h.Sum32()%10000)
}

// authorize checks the tokens of an agent or pod call and returns the
// account. It answers 401 itself when they are missing, unknown or expired.
// needKM is false for pod calls and under simplified key delivery.
func (a *Agent) authorize(w http.ResponseWriter, r *http.Request, needKM bool) (string, bool) {
	now := time.Now()
	a.mu.Lock()
	s := a.sessions[r.Header.Get("sessionToken")]
	ok := s != nil && s.kind == tokenSession && s.valid(now)
	reason := "invalid or expired sessionToken"
	if ok && needKM && !a.cfg.SKD {
		km := a.sessions[r.Header.Get("keyManagerToken")]
		if km == nil || km.kind != tokenKM || !km.valid(now) {
			ok, reason = false, "invalid or expired keyManagerToken"
		}
	}
	if !ok {
		a.stats.Unauthorized++
	}
	a.mu.Unlock()
	if !ok {
		writeError(w, http.StatusUnauthorized, reason)
		return "", false
	}
	return s.account, true
}

// certAccount returns the account of the verified client certificate.
func (a *Agent) certAccount(r *http.Request) (string, int, string) {
	if r.TLS == nil {
		return "", http.StatusBadRequest, "certificate authentication needs HTTPS"
	}
	if a.cfg.ClientCAs == nil {
		return "", http.StatusForbidden, "certificate authentication is not enabled"
	}
	if len(r.TLS.PeerCertificates) == 0 || len(r.TLS.VerifiedChains) == 0 {
		return "", http.StatusBadRequest, "no verified client certificate"
	}
	cn := strings.TrimSpace(r.TLS.PeerCertificates[0].Subject.CommonName)
	if cn == "" || (a.cfg.Username != "" && cn != a.cfg.Username) {
		return "", http.StatusForbidden, "certificate authentication is not allowed for the requested user"
	}
	return cn, 0, ""
}
