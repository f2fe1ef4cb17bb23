package symphonytest

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/symbridge/symbridge/pkg/symphony"

	"github.com/symbridge/symbridge/pkg/symphony/symphonytest/internal/exempt"
)

// maxRequestBody caps request bodies; every request of these APIs is tiny.
const maxRequestBody = 1 << 20

func (a *Agent) routes() *http.ServeMux {
	mux := http.NewServeMux()
	mux.HandleFunc("POST /login/pubkey/authenticate", a.handlePubkey(tokenSession))
	mux.HandleFunc("POST /relay/pubkey/authenticate", a.handlePubkey(tokenKM))
	mux.HandleFunc("POST /sessionauth/v1/authenticate", a.handleCert(tokenSession))
	mux.HandleFunc("POST /keyauth/v1/authenticate", a.handleCert(tokenKM))
	mux.HandleFunc("GET /pod/v2/sessioninfo", a.handleSessionInfo)
	mux.HandleFunc("GET /agent/v1/info", a.handleInfo)
	mux.HandleFunc("GET /agent/v5/datafeeds", a.handleList)
	mux.HandleFunc("POST /agent/v5/datafeeds", a.handleCreate)
	mux.HandleFunc("DELETE /agent/v5/datafeeds/{id}", a.handleDelete)
	mux.HandleFunc("POST /agent/v5/datafeeds/{id}/read", a.handleRead)
	mux.HandleFunc("POST /agent/v5/events/read", a.handleDatahose)
	mux.HandleFunc("POST /agent/v4/datafeed/create", a.handleV1Create)
	mux.HandleFunc("GET /agent/v4/datafeed/{id}/read", a.handleV1Read)
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		writeError(w, http.StatusNotFound, "no such endpoint in the simulator")
	})
	return mux
}

// apiError is both V2Error (agent) and Error (login, authenticator).
type apiError struct {
	Code    int    `json:"code"`
	Message string `json:"message"`
}

func writeError(w http.ResponseWriter, status int, msg string) {
	body, _ := json.Marshal(apiError{Code: status, Message: msg})
	writeBody(w, "", status, "application/json", body)
}

func writeJSON(w http.ResponseWriter, fault FaultKind, status int, v any) {
	body, err := json.Marshal(v)
	if err != nil {
		writeError(w, http.StatusInternalServerError, "encode response")
		return
	}
	writeBody(w, fault, status, "application/json", body)
}

func (a *Agent) badRequest(w http.ResponseWriter, msg string) {
	a.mu.Lock()
	a.stats.BadRequests++
	a.mu.Unlock()
	writeError(w, http.StatusBadRequest, msg)
}

// decodeBody decodes an optional JSON body into v. It reports whether the
// body was present.
func decodeBody(r *http.Request, v any) (bool, error) {
	data, err := io.ReadAll(io.LimitReader(r.Body, maxRequestBody+1))
	if err != nil {
		return false, fmt.Errorf("read body: %w", err)
	}
	if len(data) > maxRequestBody {
		return false, errors.New("body too large")
	}
	if len(bytes.TrimSpace(data)) == 0 {
		return false, nil
	}
	if err := json.Unmarshal(data, v); err != nil {
		return true, fmt.Errorf("malformed JSON body: %w", err)
	}
	return true, nil
}

type tokenResponse struct {
	Name  string `json:"name"`
	Token string `json:"token"`
}

func (a *Agent) handlePubkey(kind tokenKind) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		fault, done := a.beginFault(w, r, TargetAuth)
		if done {
			return
		}
		var req struct {
			Token string `json:"token"`
		}
		if _, err := decodeBody(r, &req); err != nil {
			a.authFailed(w, http.StatusUnauthorized, "malformed authentication request")
			return
		}
		account, err := a.verifyLoginJWT(req.Token, time.Now())
		if err != nil {
			a.authFailed(w, http.StatusUnauthorized, err.Error())
			return
		}
		tok := a.issueToken(kind, account, time.Now())
		writeJSON(w, fault, http.StatusOK, tokenResponse{Name: kind.headerName(), Token: tok})
	}
}

func (a *Agent) handleCert(kind tokenKind) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		fault, done := a.beginFault(w, r, TargetAuth)
		if done {
			return
		}
		account, status, msg := a.certAccount(r)
		if status != 0 {
			a.authFailed(w, status, msg)
			return
		}
		tok := a.issueToken(kind, account, time.Now())
		a.mu.Lock()
		a.stats.CertAuths++
		a.mu.Unlock()
		writeJSON(w, fault, http.StatusOK, tokenResponse{Name: kind.headerName(), Token: tok})
	}
}

func (a *Agent) authFailed(w http.ResponseWriter, status int, msg string) {
	a.mu.Lock()
	a.stats.AuthFailures++
	a.mu.Unlock()
	writeError(w, status, msg)
}

func (a *Agent) handleSessionInfo(w http.ResponseWriter, r *http.Request) {
	fault, account, ok := a.admit(w, r, TargetInfo, false)
	if !ok {
		return
	}
	email := account
	if !strings.Contains(email, "@") {
		email += "@symbridge.example"
	}
	writeJSON(w, fault, http.StatusOK, map[string]any{
		"id":           a.userID(account),
		"emailAddress": email,
		"firstName":    "Symbridge",
		"lastName":     "Bot",
		"displayName":  account,
		"title":        "Service account",
		"company":      "Symbridge",
		"username":     account,
		"location":     "",
		"avatars": []any{
			map[string]string{"size": "original", "url": "../avatars/static/150/default.png"},
			map[string]string{"size": "small", "url": "../avatars/static/50/default.png"},
		},
		"roles": []string{"INDIVIDUAL"},
	})
}

type agentInfo struct {
	IPAddress  string `json:"ipAddress"`
	Hostname   string `json:"hostname"`
	ServerFqdn string `json:"serverFqdn"`
	Version    string `json:"version"`
	URL        string `json:"url"`
	OnPrem     bool   `json:"onPrem"`
	MT         bool   `json:"mt"`
	CommitID   string `json:"commitId"`
}

// handleInfo answers without authentication: the BDK reads the version
// before deciding whether it needs a key-manager token.
func (a *Agent) handleInfo(w http.ResponseWriter, r *http.Request) {
	fault, done := a.beginFault(w, r, TargetInfo)
	if done {
		return
	}
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	writeJSON(w, fault, http.StatusOK, agentInfo{
		IPAddress: "127.0.0.1", Hostname: "symbridge-agent-sim", ServerFqdn: r.Host,
		Version: a.cfg.AgentVersion, URL: scheme + "://" + r.Host + "/agent",
		OnPrem: true, CommitID: "symbridge-sim",
	})
}

// v5Datafeed is the V5Datafeed schema.
type v5Datafeed struct {
	ID   string `json:"id"`
	Type string `json:"type"`
}

func listedType(k FeedKind) string {
	if k == KindDatahose {
		return "datahose"
	}
	return "fanout"
}

func (a *Agent) handleList(w http.ResponseWriter, r *http.Request) {
	fault, account, ok := a.admit(w, r, TargetAdmin, true)
	if !ok {
		return
	}
	q := r.URL.Query()
	tag := q.Get("tag") // empty: no filter
	if len(tag) > 100 {
		a.badRequest(w, "tag: longer than 100 characters")
		return
	}
	out, held, err := a.holdList(r.Context(), account, tag)
	if err != nil {
		return // the client went away while its list was held
	}
	a.mu.Lock()
	if !held {
		a.sweepLocked(time.Now())
		out = a.listLocked(account, tag)
	}
	a.stats.Lists++
	a.mu.Unlock()
	writeJSON(w, fault, http.StatusOK, out)
}

// listLocked is what a list of account's feeds answers, filtered by tag
// unless it is empty.
func (a *Agent) listLocked(account, tag string) []v5Datafeed {
	out := []v5Datafeed{}
	for _, f := range a.sortedFeedsLocked() {
		if f.account != account || f.kind == KindV1 || (tag != "" && f.tag != tag) {
			continue
		}
		out = append(out, v5Datafeed{ID: f.id, Type: listedType(f.kind)})
	}
	return out
}

func (a *Agent) handleCreate(w http.ResponseWriter, r *http.Request) {
	fault, account, ok := a.admit(w, r, TargetAdmin, true)
	if !ok {
		return
	}
	var req struct {
		Tag              string `json:"tag"`
		IncludeInvisible bool   `json:"includeInvisible"`
	}
	if _, err := decodeBody(r, &req); err != nil {
		a.badRequest(w, err.Error())
		return
	}
	if len(req.Tag) > 100 {
		a.badRequest(w, "tag: longer than 100 characters")
		return
	}
	a.mu.Lock()
	now := time.Now()
	a.sweepLocked(now)
	f := a.newFeedLocked(KindDatafeed, account, now)
	f.tag, f.includeInvisible = req.Tag, req.IncludeInvisible
	a.stats.FeedsCreated++
	a.mu.Unlock()
	writeJSON(w, fault, http.StatusCreated, v5Datafeed{ID: f.id, Type: listedType(f.kind)})
}

func (a *Agent) handleDelete(w http.ResponseWriter, r *http.Request) {
	// A truncation fault has nothing to cut in a 204: it answers normally.
	_, account, ok := a.admit(w, r, TargetAdmin, true)
	if !ok {
		return
	}
	id := r.PathValue("id")
	a.mu.Lock()
	a.sweepLocked(time.Now())
	f := a.feeds[id]
	found := f != nil && f.account == account && f.kind != KindV1
	if found {
		a.removeFeedLocked(f, false)
	}
	a.mu.Unlock()
	if !found {
		a.badRequest(w, "the datafeed does not exist")
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// ackBody is the AckId schema.
type ackBody struct {
	AckID          string `json:"ackId"`
	UpdatePresence *bool  `json:"updatePresence"`
}

func (a *Agent) handleRead(w http.ResponseWriter, r *http.Request) {
	fault, account, ok := a.admit(w, r, TargetRead, true)
	if !ok {
		return
	}
	var req ackBody
	if _, err := decodeBody(r, &req); err != nil {
		a.badRequest(w, err.Error())
		return
	}
	id := r.PathValue("id")
	a.mu.Lock()
	a.sweepLocked(time.Now())
	f := a.feeds[id]
	if f == nil || f.account != account || f.kind != KindDatafeed {
		a.mu.Unlock()
		a.badRequest(w, "the datafeed does not exist (feeds expire after 30 minutes without reads)")
		return
	}
	if a.overLimitLocked(f) {
		a.stats.FeedLimitRefusals++
		a.mu.Unlock()
		writeError(w, http.StatusForbidden, fmt.Sprintf("too many feeds created: the limit is %d active feeds", a.cfg.MaxFeeds))
		return
	}
	if fault == FaultFeedExpired {
		a.removeFeedLocked(f, true)
		a.mu.Unlock()
		writeError(w, http.StatusBadRequest, "the datafeed does not exist (expired)")
		return
	}
	a.mu.Unlock()
	a.serveRead(w, r, f, req.AckID, fault)
}

// overLimitLocked reports whether f is beyond the account's first MaxFeeds
// live datafeed v2 feeds.
func (a *Agent) overLimitLocked(f *feed) bool {
	older := 0
	for _, g := range a.feeds {
		if g.kind == KindDatafeed && g.account == f.account && g.seq < f.seq {
			older++
		}
	}
	return older >= a.cfg.MaxFeeds
}

// serveRead acks, long-polls and answers a V5EventList.
func (a *Agent) serveRead(w http.ResponseWriter, r *http.Request, f *feed, ackID string, fault FaultKind) {
	switch err := a.ack(f, ackID); {
	case errors.Is(err, errBadAckID):
		writeError(w, http.StatusBadRequest, "the ackId is malformed or unknown")
		return
	case err != nil:
		a.badRequest(w, "the datafeed does not exist")
		return
	}
	res, err := a.take(r.Context(), f, a.cfg.MaxBatch, true)
	switch {
	case errors.Is(err, errFeedGone):
		a.badRequest(w, "the datafeed does not exist")
		return
	case err != nil:
		return // the client went away: nothing to answer
	}
	if res.malformed {
		exempt.Mark(r, "deliberately malformed event")
	}
	body := eventList(res.events, res.ackID)
	writeBody(w, fault, http.StatusOK, "application/json", *body)
	bodyPool.Put(body) // Write has sent or copied it
}

// eventList builds a V5EventList around the raw events, byte for byte, in
// a pooled buffer sized once: a full read is ~100 KiB, and growing a fresh
// buffer for every read made the simulator the benchmark's third-largest
// CPU consumer (it shares the machine with the bridge it measures). The
// caller returns the buffer to bodyPool once the body is written.
func eventList(events [][]byte, ackID string) *[]byte {
	q, _ := json.Marshal(ackID)
	n := len(`{"events":,"ackId":}`) + arrayLen(events) + len(q)
	bp := bodyPool.Get().(*[]byte)
	b := slices.Grow((*bp)[:0], n)
	b = append(b, `{"events":`...)
	b = appendArray(b, events)
	b = append(b, `,"ackId":`...)
	b = append(b, q...)
	b = append(b, '}')
	*bp = b
	return bp
}

var bodyPool = sync.Pool{New: func() any { return new([]byte) }}

// eventArray is the JSON array of the raw events, byte for byte.
func eventArray(events [][]byte) []byte {
	return appendArray(make([]byte, 0, arrayLen(events)), events)
}

func arrayLen(events [][]byte) int {
	n := 2 + max(len(events)-1, 0) // brackets and commas
	for _, e := range events {
		n += len(e)
	}
	return n
}

func appendArray(b []byte, events [][]byte) []byte {
	b = append(b, '[')
	for i, e := range events {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, e...)
	}
	return append(b, ']')
}

// datahoseBody is the V5EventsReadBody schema.
type datahoseBody struct {
	Type           string   `json:"type"`
	Tag            string   `json:"tag"`
	EventTypes     []string `json:"eventTypes"`
	Scopes         []string `json:"scopes"`
	AckID          string   `json:"ackId"`
	UpdatePresence *bool    `json:"updatePresence"`
}

func (req *datahoseBody) validate() error {
	switch {
	case req.Type != "datahose":
		return fmt.Errorf("type: must be \"datahose\", got %q", req.Type)
	case req.Tag == "" || len([]rune(req.Tag)) > 80:
		return errors.New("tag: must be 1 to 80 characters")
	case len(req.EventTypes) == 0:
		return errors.New("eventTypes: at least one event type is required")
	}
	for _, t := range req.EventTypes {
		if !symphony.IsKnownType(t) {
			return fmt.Errorf("eventTypes: %q is not a real-time event type", t)
		}
	}
	for _, s := range req.Scopes {
		switch s {
		case "INTERNAL", "EXTERNAL", "FEDERATED":
		default:
			return fmt.Errorf("scopes: %q is not INTERNAL, EXTERNAL or FEDERATED", s)
		}
	}
	return nil
}

func (a *Agent) handleDatahose(w http.ResponseWriter, r *http.Request) {
	fault, account, ok := a.admit(w, r, TargetRead, true)
	if !ok {
		return
	}
	var req datahoseBody
	present, err := decodeBody(r, &req)
	if err == nil && !present {
		err = errors.New("a request body is required")
	}
	if err == nil {
		err = req.validate()
	}
	if err != nil {
		a.badRequest(w, err.Error())
		return
	}
	types := slices.Clone(req.EventTypes)
	slices.Sort(types)
	types = slices.Compact(types)

	a.mu.Lock()
	now := time.Now()
	a.sweepLocked(now)
	var f *feed
	count := 0
	for _, g := range a.feeds {
		if g.kind != KindDatahose || g.account != account {
			continue
		}
		count++
		if g.tag == req.Tag && slices.Equal(g.eventTypes, types) {
			f = g
		}
	}
	if f != nil && fault == FaultFeedExpired {
		a.removeFeedLocked(f, true)
		a.mu.Unlock()
		writeError(w, http.StatusBadRequest, "the feed expired")
		return
	}
	if f == nil {
		if count >= a.cfg.MaxDatahoseFeeds {
			a.stats.FeedLimitRefusals++
			a.mu.Unlock()
			writeError(w, http.StatusForbidden, fmt.Sprintf("too many datahose feeds: the limit is %d", a.cfg.MaxDatahoseFeeds))
			return
		}
		f = a.newFeedLocked(KindDatahose, account, now)
		f.tag, f.eventTypes, f.scopes = req.Tag, types, slices.Clone(req.Scopes)
		f.typeSet = make(map[string]bool, len(types))
		for _, t := range types {
			f.typeSet[t] = true
		}
		a.stats.DatahoseFeedsCreated++
	}
	a.mu.Unlock()
	if fault == FaultFeedExpired {
		fault = "" // the feed was just created: nothing to expire
	}
	a.serveRead(w, r, f, req.AckID, fault)
}

// v1Warning is the deprecation header every datafeed v1 response carries.
const v1Warning = "This method is deprecated"

func (a *Agent) handleV1Create(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("X-Warning", v1Warning)
	fault, account, ok := a.admit(w, r, TargetAdmin, true)
	if !ok {
		return
	}
	a.mu.Lock()
	now := time.Now()
	a.sweepLocked(now)
	count := 0
	for _, g := range a.feeds {
		if g.kind == KindV1 && g.account == account {
			count++
		}
	}
	if count >= a.cfg.MaxV1Feeds {
		a.stats.FeedLimitRefusals++
		a.mu.Unlock()
		writeError(w, http.StatusServiceUnavailable, "max number of data feeds reached")
		return
	}
	f := a.newFeedLocked(KindV1, account, now)
	a.stats.V1FeedsCreated++
	a.mu.Unlock()
	writeJSON(w, fault, http.StatusOK, map[string]string{"id": f.id})
}

func (a *Agent) handleV1Read(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("X-Warning", v1Warning)
	fault, account, ok := a.admit(w, r, TargetRead, true)
	if !ok {
		return
	}
	limit := a.cfg.MaxBatch
	if s := r.URL.Query().Get("limit"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil {
			a.badRequest(w, "limit: not an integer")
			return
		}
		if n > 0 {
			limit = min(n, limit)
		}
	}
	id := r.PathValue("id")
	a.mu.Lock()
	a.sweepLocked(time.Now())
	f := a.feeds[id]
	if f == nil || f.account != account || f.kind != KindV1 {
		a.mu.Unlock()
		a.badRequest(w, "Could not find a datafeed with the provided id")
		return
	}
	if fault == FaultFeedExpired {
		a.removeFeedLocked(f, true)
		a.mu.Unlock()
		writeError(w, http.StatusBadRequest, "Could not find a datafeed with the provided id")
		return
	}
	a.mu.Unlock()
	res, err := a.take(r.Context(), f, limit, false)
	switch {
	case errors.Is(err, errFeedGone):
		a.badRequest(w, "Could not find a datafeed with the provided id")
		return
	case err != nil:
		return
	}
	if res.malformed {
		exempt.Mark(r, "deliberately malformed event")
	}
	if len(res.events) == 0 {
		w.WriteHeader(http.StatusNoContent)
		return
	}
	writeBody(w, fault, http.StatusOK, "application/json", eventArray(res.events))
}
