package symphony_test

import (
	"bytes"
	"compress/gzip"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"runtime"
	"runtime/metrics"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/symbridge/symbridge/pkg/symphony"
)

// Tests of a hostile or broken Agent, over real HTTP: whatever the Agent
// sends, a read ends with a batch or a clear error that names the feed and
// that Classify sorts so that the bridge's loop goes on; memory stays
// bounded by MaxBodyBytes; nothing panics.

// feedKind selects the reader a hostile test goes through.
type feedKind string

const (
	kindV2   feedKind = "datafeed v2"
	kindHose feedKind = "datahose"
	kindV1   feedKind = "datafeed v1"
)

// hostileEnv is a stub Agent whose feed read (all three kinds) is answered
// by one handler, after the usual token check.
type hostileEnv struct {
	s    *stubSymphony
	feed func(w http.ResponseWriter, r *http.Request)
}

func newHostileEnv(t *testing.T, feed func(w http.ResponseWriter, r *http.Request)) *hostileEnv {
	t.Helper()
	e := &hostileEnv{s: newStub(t), feed: feed}
	serve := func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		if !e.s.authorized(w, r) {
			return
		}
		e.feed(w, r)
	}
	registerList(e.s, "feed1_f")
	e.s.Mux.HandleFunc("POST /agent/v5/datafeeds/{id}/read", serve)
	e.s.Mux.HandleFunc("POST /agent/v5/events/read", serve)
	e.s.Mux.HandleFunc("GET /agent/v4/datafeed/{id}/read", serve)
	e.s.Mux.HandleFunc("POST /agent/v4/datafeed/create", func(w http.ResponseWriter, r *http.Request) {
		if e.s.authorized(w, r) {
			writeJSON(w, 200, map[string]string{"id": "v1feed"})
		}
	})
	return e
}

// reader builds a reader of the given kind; name is what its errors must
// mention to say which feed failed.
func (e *hostileEnv) reader(t *testing.T, kind feedKind, c *symphony.Client) (read func(context.Context) (symphony.Batch, error), name string) {
	t.Helper()
	switch kind {
	case kindV2:
		f := symphony.NewDatafeedV2(c, symphony.DatafeedOptions{})
		return func(ctx context.Context) (symphony.Batch, error) { return f.Read(ctx, "") }, "feed1_f"
	case kindHose:
		d, err := symphony.NewDatahose(c, symphony.DatahoseOptions{Tag: "hose1", EventTypes: []string{symphony.TypeMessageSent}})
		if err != nil {
			t.Fatal(err)
		}
		return func(ctx context.Context) (symphony.Batch, error) { return d.Read(ctx, "") }, "hose1"
	case kindV1:
		f := symphony.NewDatafeedV1(c, symphony.DatafeedV1Options{IDFilePath: t.TempDir() + "/"})
		return func(ctx context.Context) (symphony.Batch, error) { return f.Read(ctx, "") }, "v1feed"
	}
	t.Fatalf("unknown kind %q", kind)
	return nil, ""
}

// readOnce reads one batch of a datafeed v2 through the hostile Agent.
func readOnce(t *testing.T, feed func(w http.ResponseWriter, r *http.Request), mod ...func(*symphony.ClientConfig)) (symphony.Batch, error) {
	t.Helper()
	e := newHostileEnv(t, feed)
	read, _ := e.reader(t, kindV2, e.s.client(mod...))
	var (
		b   symphony.Batch
		err error
	)
	within(t, 20*time.Second, func() { b, err = read(context.Background()) })
	return b, err
}

// checkReadError asserts the error of a failed read: it names the feed,
// Classify gives want, and it is short (no echoed page or body).
func checkReadError(t *testing.T, err error, feed string, want symphony.Class) {
	t.Helper()
	if err == nil {
		t.Fatal("read succeeded, want an error")
	}
	if got := symphony.Classify(err); got != want {
		t.Errorf("Classify(%v) = %s, want %s", err, got, want)
	}
	if !strings.Contains(err.Error(), feed) {
		t.Errorf("error %q does not name the feed %s", err, feed)
	}
	if len(err.Error()) > 600 {
		t.Errorf("error is %d bytes long: %.300q...", len(err.Error()), err)
	}
}

// TestHostile_BodyOverCap: a body over MaxBodyBytes is cut off at the cap,
// whether the server streams it endlessly, declares a huge length, or
// compresses it into a small gzip bomb.
func TestHostile_BodyOverCap(t *testing.T) {
	const limit = 1 << 20
	endless := func(w io.Writer) {
		chunk := []byte(strings.Repeat(oneEvent+",", 64))
		if _, err := io.WriteString(w, `{"ackId":"a","events":[`); err != nil {
			return
		}
		for { // until the client hangs up; bounded by its cap
			if _, err := w.Write(chunk); err != nil {
				return
			}
		}
	}
	for _, tc := range []struct {
		name string
		feed func(w http.ResponseWriter, r *http.Request)
	}{
		{"endless chunked body", func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "application/json")
			endless(w)
		}},
		{"declared length over the cap, sent slowly", func(w http.ResponseWriter, r *http.Request) {
			// Only the header matters: the client must give up at once
			// instead of waiting for a gigabyte that trickles in.
			w.Header().Set("Content-Length", strconv.Itoa(1<<30))
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(200)
			rc := http.NewResponseController(w)
			for {
				if _, err := w.Write([]byte(" ")); err != nil {
					return
				}
				_ = rc.Flush()
				select {
				case <-r.Context().Done():
					return
				case <-time.After(50 * time.Millisecond):
				}
			}
		}},
		{"gzip bomb", func(w http.ResponseWriter, r *http.Request) {
			// Sent whether or not the client asked for gzip: the cap must
			// hold on what the client ends up reading.
			w.Header().Set("Content-Type", "application/json")
			w.Header().Set("Content-Encoding", "gzip")
			zw, _ := gzip.NewWriterLevel(w, gzip.BestCompression)
			endless(zw)
			_ = zw.Close()
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			start := time.Now()
			_, err := readOnce(t, tc.feed, func(c *symphony.ClientConfig) { c.MaxBodyBytes = limit })
			checkReadError(t, err, "feed1_f", symphony.ClassRetry)
			if !errors.Is(err, symphony.ErrBadResponse) || !strings.Contains(err.Error(), "exceeds") {
				t.Errorf("err = %v, want ErrBadResponse saying the body exceeds the cap", err)
			}
			if d := time.Since(start); d > 5*time.Second {
				t.Errorf("took %s to refuse the body", d)
			}
		})
	}
}

// bigEventList builds an event list of about size bytes: events carrying a
// 64 KiB message each, as a batch of large messages would.
func bigEventList(size int) []byte {
	text := strings.Repeat("lorem ipsum dolor sit amet ", 64<<10/27)
	var b bytes.Buffer
	b.Grow(size + 128<<10)
	b.WriteString(`{"events":[`)
	for i := 0; b.Len() < size-100<<10; i++ {
		if i > 0 {
			b.WriteByte(',')
		}
		// Not fmt: formatting 60 MiB through %s takes seconds under -race.
		n := strconv.Itoa(i)
		b.WriteString(`{"id":"big` + n + `","type":"MESSAGESENT","timestamp":1700000000000,` +
			`"payload":{"messageSent":{"message":{"messageId":"m` + n + `","stream":{"streamId":"s1","streamType":"ROOM"},` +
			`"message":"<div>`)
		b.WriteString(text)
		b.WriteString(`</div>"}}}}`)
	}
	b.WriteString(`],"ackId":"big"}`)
	return b.Bytes()
}

// heapSampler records the largest heap (live and not yet swept objects)
// seen while it runs. Sampling can miss a short peak; the final HeapAlloc
// and the retained heap after a GC are checked besides.
type heapSampler struct {
	stop chan struct{}
	done chan struct{}
	peak atomic.Uint64
}

const heapObjectsMetric = "/memory/classes/heap/objects:bytes"

func startHeapSampler() *heapSampler {
	h := &heapSampler{stop: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(h.done)
		s := []metrics.Sample{{Name: heapObjectsMetric}}
		tick := time.NewTicker(200 * time.Microsecond)
		defer tick.Stop()
		for {
			metrics.Read(s)
			if v := s[0].Value.Uint64(); v > h.peak.Load() {
				h.peak.Store(v)
			}
			select {
			case <-h.stop:
				return
			case <-tick.C:
			}
		}
	}()
	return h
}

func (h *heapSampler) Stop() uint64 {
	close(h.stop)
	<-h.done
	return h.peak.Load()
}

func heapObjects() uint64 {
	s := []metrics.Sample{{Name: heapObjectsMetric}}
	metrics.Read(s)
	return s[0].Value.Uint64()
}

// TestHostile_LargeBodyUnderCap: a 60 MiB batch under the default 64 MiB cap
// is read, and the heap (live and not yet collected objects) grows by a
// small multiple of the body while doing so. With a Content-Length the body
// is read into one buffer of its size: body + the events' Raw copies, 2x.
// Without one (the Agent streams big answers chunked) the chunks it was read
// in come on top until the GC reclaims them: 3x, and the bound leaves room
// for the sampling. Reading both with io.ReadAll measured 3.04x.
func TestHostile_LargeBodyUnderCap(t *testing.T) {
	if testing.Short() {
		t.Skip("reads 2 x 60 MiB")
	}
	body := bigEventList(60 << 20)
	size := uint64(len(body))
	for _, tc := range []struct {
		chunked bool
		bound   float64 // times the body
	}{{false, 2.5}, {true, 3.5}} {
		chunked := tc.chunked
		t.Run(fmt.Sprintf("chunked=%v", chunked), func(t *testing.T) {
			e := newHostileEnv(t, func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Content-Type", "application/json")
				if !chunked {
					w.Header().Set("Content-Length", strconv.Itoa(len(body)))
				}
				_, _ = w.Write(body)
			})
			c := e.s.client()
			read, _ := e.reader(t, kindV2, c)
			if err := c.Authenticate(context.Background()); err != nil {
				t.Fatal(err)
			}
			runtime.GC()
			base := heapObjects()
			sampler := startHeapSampler()
			b, err := read(context.Background())
			peak := max(sampler.Stop(), heapObjects())
			if err != nil {
				t.Fatal(err)
			}
			runtime.GC()
			retained := heapObjects()
			growth := peak - min(peak, base)
			t.Logf("body %d MiB: peak heap growth %.2fx, retained %.2fx (%d events)",
				size>>20, float64(growth)/float64(size), float64(retained-min(retained, base))/float64(size), len(b.Events))
			if float64(growth) > tc.bound*float64(size) {
				t.Errorf("heap grew by %d MiB reading a %d MiB body, want under %.1fx", growth>>20, size>>20, tc.bound)
			}
			if retained > base+size+size/2 {
				t.Errorf("%d MiB retained after the read, want about the events' %d MiB", (retained-min(retained, base))>>20, size>>20)
			}
			if len(b.Events) == 0 || b.AckID != "big" {
				t.Fatalf("batch: %d events, ackId %q", len(b.Events), b.AckID)
			}
			for i := range b.Events {
				if b.Events[i].Err != nil {
					t.Fatalf("event %d: %v", i, b.Events[i].Err)
				}
			}
			runtime.KeepAlive(b)
		})
	}
}

// deepEvent is an event whose payload nests depth arrays: encoding/json
// refuses more than 10000 levels.
func deepEvent(depth int) string {
	return `{"id":"deep","type":"MESSAGESENT","payload":{"messageSent":{"message":{"messageId":"md",` +
		`"data":` + strings.Repeat("[", depth) + strings.Repeat("]", depth) + `}}}}`
}

// TestHostile_DeeplyNestedEvent: an event nested deeper than encoding/json
// allows must not hold up its batch, whose ack would otherwise never come:
// the Agent would redeliver the batch forever and the feed would stall. The
// event comes back with Err (the bridge dead-letters it, Raw unchanged) and
// the rest of the batch decodes.
func TestHostile_DeeplyNestedEvent(t *testing.T) {
	deep := deepEvent(100_000)
	for _, kind := range []feedKind{kindV2, kindHose, kindV1} {
		t.Run(string(kind), func(t *testing.T) {
			body := eventList("ack-deep", oneEvent, deep, oneEvent)
			if kind == kindV1 {
				body = "[" + oneEvent + "," + deep + "," + oneEvent + "]"
			}
			e := newHostileEnv(t, func(w http.ResponseWriter, r *http.Request) { writeRaw(w, 200, body) })
			read, _ := e.reader(t, kind, e.s.client())
			b, err := read(context.Background())
			if err != nil {
				t.Fatalf("read: %v", err)
			}
			if len(b.Events) != 3 {
				t.Fatalf("%d events, want 3", len(b.Events))
			}
			if kind != kindV1 && b.AckID != "ack-deep" {
				t.Errorf("AckID = %q", b.AckID)
			}
			for _, i := range []int{0, 2} {
				if ev := b.Events[i]; ev.Err != nil || ev.ID != "e1" || string(ev.Raw) != oneEvent {
					t.Errorf("event %d = %+v, want the plain event", i, ev)
				}
			}
			ev := b.Events[1]
			if !errors.Is(ev.Err, symphony.ErrInvalidEvent) || !strings.Contains(ev.Err.Error(), "depth") {
				t.Errorf("deep event Err = %v, want ErrInvalidEvent naming the depth", ev.Err)
			}
			if string(ev.Raw) != deep {
				t.Errorf("deep event Raw changed (%d bytes, want %d)", len(ev.Raw), len(deep))
			}
		})
	}
	// Just within the limit, the event decodes like any other.
	t.Run("depth 9990", func(t *testing.T) {
		ok := deepEvent(9990)
		b, err := readOnce(t, func(w http.ResponseWriter, r *http.Request) { writeRaw(w, 200, eventList("a", ok)) })
		if err != nil || len(b.Events) != 1 || b.Events[0].Err != nil || b.Events[0].ID != "deep" {
			t.Fatalf("batch %+v, err %v", b, err)
		}
	})
	// Too deep outside the events, the batch itself cannot be read.
	for name, body := range map[string]string{
		"ackId":           `{"events":[` + oneEvent + `],"ackId":` + strings.Repeat("[", 100_000) + strings.Repeat("]", 100_000) + `}`,
		"top level":       strings.Repeat("[", 100_000) + strings.Repeat("]", 100_000),
		"truncated event": `{"events":[` + oneEvent + "," + deep[:len(deep)-10],
	} {
		t.Run(name, func(t *testing.T) {
			_, err := readOnce(t, func(w http.ResponseWriter, r *http.Request) { writeRaw(w, 200, body) })
			checkReadError(t, err, "feed1_f", symphony.ClassRetry)
			if !errors.Is(err, symphony.ErrBadResponse) {
				t.Errorf("err = %v, want ErrBadResponse", err)
			}
		})
	}
}

// TestHostile_InvalidUTF8: bytes that are not UTF-8 inside event strings
// reach Raw unchanged; encoding/json would turn them into U+FFFD.
func TestHostile_InvalidUTF8(t *testing.T) {
	bad := "{\"id\":\"e\xff1\",\"type\":\"MESSAGESENT\",\"timestamp\":1700000000000," +
		"\"payload\":{\"messageSent\":{\"message\":{\"messageId\":\"m\xc3\x28\",\"message\":\"<p>\xed\xa0\x80 \xf8\x88\x80\x80\x80</p>\"," +
		"\"stream\":{\"streamId\":\"s1\",\"streamType\":\"ROOM\"}}}}}"
	if utf8.ValidString(bad) {
		t.Fatal("the test event is valid UTF-8")
	}
	for _, kind := range []feedKind{kindV2, kindV1} {
		t.Run(string(kind), func(t *testing.T) {
			body := eventList("a", bad, oneEvent)
			if kind == kindV1 {
				body = "[" + bad + "," + oneEvent + "]"
			}
			e := newHostileEnv(t, func(w http.ResponseWriter, r *http.Request) { writeRaw(w, 200, body) })
			read, _ := e.reader(t, kind, e.s.client())
			b, err := read(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			if len(b.Events) != 2 {
				t.Fatalf("%d events, want 2", len(b.Events))
			}
			ev := b.Events[0]
			if !bytes.Equal(ev.Raw, []byte(bad)) {
				t.Errorf("Raw = %q, want the bytes sent, %q", ev.Raw, bad)
			}
			if ev.Err != nil || ev.StreamID != "s1" || ev.Type != symphony.TypeMessageSent {
				t.Errorf("event = %+v, want it routed", ev)
			}
			if b.Events[1].Err != nil || string(b.Events[1].Raw) != oneEvent {
				t.Errorf("second event = %+v", b.Events[1])
			}
		})
	}
}

// TestHostile_ContentType: the body decides, not the Content-Type. A JSON
// batch labelled text/html is read (proxies mislabel); an HTML page is an
// unparsable response whose error gives the status, type and size, not the
// page.
func TestHostile_ContentType(t *testing.T) {
	page := "<!DOCTYPE html><html><head><title>Sign in</title></head><body>" + strings.Repeat("<p>corporate login</p>", 500) + "</body></html>"
	t.Run("JSON labelled text/html", func(t *testing.T) {
		b, err := readOnce(t, func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "text/html; charset=utf-8")
			_, _ = io.WriteString(w, eventList("a", oneEvent))
		})
		if err != nil || len(b.Events) != 1 || b.Events[0].Err != nil {
			t.Fatalf("batch %+v, err %v", b, err)
		}
	})
	for _, ct := range []string{"text/html; charset=utf-8", "application/json"} {
		t.Run("HTML labelled "+ct, func(t *testing.T) {
			_, err := readOnce(t, func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Content-Type", ct)
				_, _ = io.WriteString(w, page)
			})
			checkReadError(t, err, "feed1_f", symphony.ClassRetry)
			if !errors.Is(err, symphony.ErrBadResponse) {
				t.Errorf("err = %v, want ErrBadResponse", err)
			}
			mediaType, _, _ := strings.Cut(ct, ";")
			if msg := err.Error(); strings.Contains(msg, "corporate login") || !strings.Contains(msg, mediaType) ||
				!strings.Contains(msg, strconv.Itoa(len(page))+" bytes") {
				t.Errorf("error %q: want the content type and size, not the page", msg)
			}
		})
	}
}

// TestHostile_HTMLErrorPages: a proxy's or load balancer's HTML error page
// becomes an *APIError with the status and no message: the page is not
// Symphony's {code, message} and is never echoed.
func TestHostile_HTMLErrorPages(t *testing.T) {
	page := "<html>\r\n<head><title>502 Bad Gateway</title></head>\r\n<body>\r\n<center><h1>502 Bad Gateway</h1></center>\r\n" +
		strings.Repeat("<!-- padding to defeat the browser's own error page -->\r\n", 3000) + "<hr><center>nginx</center>\r\n</body>\r\n</html>\r\n"
	for _, tc := range []struct {
		status     int
		retryAfter string
		want       symphony.Class
	}{
		{502, "", symphony.ClassRetry},
		{503, "12", symphony.ClassRetry},
		{504, "", symphony.ClassRetry},
		{500, "", symphony.ClassRetry},
		{403, "", symphony.ClassSlowRetry},
		{404, "", symphony.ClassSlowRetry},
	} {
		t.Run(strconv.Itoa(tc.status), func(t *testing.T) {
			_, err := readOnce(t, func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Content-Type", "text/html")
				if tc.retryAfter != "" {
					w.Header().Set("Retry-After", tc.retryAfter)
				}
				w.WriteHeader(tc.status)
				_, _ = io.WriteString(w, page)
			})
			checkReadError(t, err, "feed1_f", tc.want)
			var apiErr *symphony.APIError
			if !errors.As(err, &apiErr) {
				t.Fatalf("err = %v, want *APIError", err)
			}
			if apiErr.StatusCode != tc.status || apiErr.Message != "" {
				t.Errorf("APIError = %+v, want status %d and no message", apiErr, tc.status)
			}
			if tc.retryAfter != "" && apiErr.RetryAfter != 12*time.Second {
				t.Errorf("RetryAfter = %s, want 12s", apiErr.RetryAfter)
			}
			if strings.Contains(err.Error(), "<") || strings.Contains(err.Error(), "nginx") {
				t.Errorf("error %q echoes the page", err)
			}
		})
	}
}

// TestHostile_Trickle: a server that trickles a body, or stalls before its
// headers, is cut off at the request deadline with a transient error; a
// slow body that completes in time is read.
func TestHostile_Trickle(t *testing.T) {
	full := eventList("slow", oneEvent, oneEvent)
	trickle := func(body string, every time.Duration) func(w http.ResponseWriter, r *http.Request) {
		return func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(200)
			rc := http.NewResponseController(w)
			for i := 0; i < len(body); i += 16 {
				if _, err := io.WriteString(w, body[i:min(i+16, len(body))]); err != nil {
					return
				}
				_ = rc.Flush()
				select {
				case <-r.Context().Done():
					return
				case <-time.After(every):
				}
			}
		}
	}
	stall := func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-r.Context().Done():
		case <-time.After(10 * time.Second):
		}
	}
	for _, tc := range []struct {
		name string
		feed func(w http.ResponseWriter, r *http.Request)
		ok   bool
	}{
		{"valid JSON trickled past the deadline", trickle(full, 40*time.Millisecond), false},
		{"stall before the headers", stall, false},
		{"slow body finishing in time", trickle(full, time.Millisecond), true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newHostileEnv(t, tc.feed)
			c := e.s.client()
			read, _ := e.reader(t, kindV2, c)
			if err := c.Authenticate(context.Background()); err != nil {
				t.Fatal(err)
			}
			symphony.SetRequestTimeoutForTest(c, 500*time.Millisecond)
			var (
				b   symphony.Batch
				err error
			)
			within(t, 5*time.Second, func() { b, err = read(context.Background()) })
			if tc.ok {
				if err != nil || len(b.Events) != 2 {
					t.Fatalf("batch %+v, err %v", b, err)
				}
				return
			}
			checkReadError(t, err, "feed1_f", symphony.ClassRetry)
			if !strings.Contains(err.Error(), "no complete response within") {
				t.Errorf("err = %v, want it to name the deadline", err)
			}
		})
	}
}

// hangUp writes prefix (a 200 with a chunked body unless length is set) and
// then closes the connection without finishing the response.
func hangUp(prefix string, length int) func(w http.ResponseWriter, r *http.Request) {
	return func(w http.ResponseWriter, r *http.Request) {
		conn, buf, err := http.NewResponseController(w).Hijack()
		if err != nil {
			panic(err) // httptest's HTTP/1 server can always hijack
		}
		defer conn.Close()
		head := "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
		if length > 0 {
			head += "Content-Length: " + strconv.Itoa(length) + "\r\n\r\n" + prefix
		} else if prefix != "" {
			head += "Transfer-Encoding: chunked\r\n\r\n" + strconv.FormatInt(int64(len(prefix)), 16) + "\r\n" + prefix + "\r\n"
		} else {
			head = ""
		}
		_, _ = buf.WriteString(head)
		_ = buf.Flush()
	}
}

// TestHostile_HangUp: a server that sends part of an answer and closes the
// connection gives a transient error, even when the part is a complete
// JSON batch (its end was never framed, so it cannot be trusted).
func TestHostile_HangUp(t *testing.T) {
	full := eventList("a", oneEvent)
	for _, tc := range []struct {
		name     string
		feed     func(w http.ResponseWriter, r *http.Request)
		badResp  bool
		contains string
	}{
		{"before the headers", hangUp("", 0), false, "EOF"},
		{"chunked, valid prefix", hangUp(full[:40], 0), true, "reading body"},
		{"chunked, complete JSON but no last chunk", hangUp(full, 0), true, "reading body"},
		{"Content-Length, valid prefix", hangUp(full[:40], len(full)), true, "reading body"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := readOnce(t, tc.feed)
			checkReadError(t, err, "feed1_f", symphony.ClassRetry)
			if errors.Is(err, symphony.ErrBadResponse) != tc.badResp || !strings.Contains(err.Error(), tc.contains) {
				t.Errorf("err = %v, want ErrBadResponse %v and %q", err, tc.badResp, tc.contains)
			}
		})
	}
}

// TestHostile_OddBodies: bodies that are JSON but not a batch.
func TestHostile_OddBodies(t *testing.T) {
	for _, tc := range []struct {
		kind    feedKind
		body    string
		events  int // -1: ErrBadResponse
		ackID   string
		message string // part of the error
	}{
		{kindV2, ``, -1, "", "empty body"},
		{kindV2, `null`, -1, "", "no ackId"},
		{kindV2, `{"events": null, "ackId": "x"}`, 0, "x", ""}, // nothing to publish, and acked
		{kindV2, `{"events": [], "ackId": null}`, -1, "", "no ackId"},
		{kindV2, `{"events": {}, "ackId": "x"}`, -1, "", "cannot unmarshal"},
		{kindV2, `[]`, -1, "", "cannot unmarshal"},
		{kindV2, `{"events": [], "ackId": 7}`, -1, "", "cannot unmarshal"},
		{kindV2, `{"events": [], "ackId": "x"} {}`, -1, "", "after top-level value"},
		{kindHose, `null`, -1, "", "no ackId"},
		{kindHose, ``, -1, "", "empty body"},
		{kindV1, ``, -1, "", "empty body"},
		{kindV1, `null`, 0, "", ""}, // as the BDK: no events
		{kindV1, `{}`, -1, "", "cannot unmarshal"},
	} {
		t.Run(fmt.Sprintf("%s %s", tc.kind, tc.body), func(t *testing.T) {
			e := newHostileEnv(t, func(w http.ResponseWriter, r *http.Request) { writeRaw(w, 200, tc.body) })
			read, name := e.reader(t, tc.kind, e.s.client())
			b, err := read(context.Background())
			if tc.events < 0 {
				checkReadError(t, err, name, symphony.ClassRetry)
				if !errors.Is(err, symphony.ErrBadResponse) || !strings.Contains(err.Error(), tc.message) {
					t.Errorf("err = %v, want ErrBadResponse mentioning %q", err, tc.message)
				}
				return
			}
			if err != nil || len(b.Events) != tc.events || b.AckID != tc.ackID {
				t.Fatalf("batch %+v, err %v; want %d events, ackId %q", b, err, tc.events, tc.ackID)
			}
		})
	}
}

// TestHostile_JunkEvents: elements of the events array that are not event
// objects each become an Event with Err and Raw as sent (the bridge
// dead-letters them); the others decode.
func TestHostile_JunkEvents(t *testing.T) {
	junk := []string{`null`, `42`, `"MESSAGESENT"`, `true`, `[]`, `{}`, `{"type":7}`, `[` + oneEvent + `]`}
	for _, kind := range []feedKind{kindV2, kindV1} {
		t.Run(string(kind), func(t *testing.T) {
			elems := append(append([]string{oneEvent}, junk...), oneEvent)
			body := eventList("junk", elems...)
			if kind == kindV1 {
				body = "[" + strings.Join(elems, " ,\n") + "]"
			}
			e := newHostileEnv(t, func(w http.ResponseWriter, r *http.Request) { writeRaw(w, 200, body) })
			read, _ := e.reader(t, kind, e.s.client())
			b, err := read(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			if len(b.Events) != len(elems) {
				t.Fatalf("%d events, want %d", len(b.Events), len(elems))
			}
			for i, ev := range b.Events {
				if string(ev.Raw) != elems[i] {
					t.Errorf("event %d Raw = %q, want %q", i, ev.Raw, elems[i])
				}
				isJunk := i > 0 && i < len(elems)-1
				if isJunk != errors.Is(ev.Err, symphony.ErrInvalidEvent) {
					t.Errorf("event %d (%s): Err = %v", i, elems[i], ev.Err)
				}
			}
		})
	}
}

// TestHostile_HugeHeaders: response headers are capped too.
func TestHostile_HugeHeaders(t *testing.T) {
	_, err := readOnce(t, func(w http.ResponseWriter, r *http.Request) {
		conn, buf, err := http.NewResponseController(w).Hijack()
		if err != nil {
			panic(err)
		}
		defer conn.Close()
		_, _ = buf.WriteString("HTTP/1.1 200 OK\r\n")
		for i := 0; i < 4096; i++ { // 4 MiB of headers
			if _, err := fmt.Fprintf(buf, "X-Junk-%d: %s\r\n", i, strings.Repeat("j", 1000)); err != nil {
				return
			}
		}
		_, _ = buf.WriteString("Content-Length: 2\r\n\r\n{}")
		_ = buf.Flush()
	})
	checkReadError(t, err, "feed1_f", symphony.ClassRetry)
	if !strings.Contains(err.Error(), "header") {
		t.Errorf("err = %v, want it to mention the headers", err)
	}
}

// TestHostile_LoopGoesOn: after each kind of hostile answer, the same
// reader reads the next good batch: no state is left broken.
func TestHostile_LoopGoesOn(t *testing.T) {
	answers := []func(w http.ResponseWriter, r *http.Request){
		func(w http.ResponseWriter, r *http.Request) { writeRaw(w, 502, "<html>bad gateway</html>") },
		hangUp(eventList("a", oneEvent)[:30], 0),
		func(w http.ResponseWriter, r *http.Request) { writeRaw(w, 200, "<html>login</html>") },
		func(w http.ResponseWriter, r *http.Request) { writeRaw(w, 200, eventList("a", deepEvent(20_000))) },
		func(w http.ResponseWriter, r *http.Request) { writeRaw(w, 200, strings.Repeat(" ", 5000)) },
	}
	var (
		mu   sync.Mutex
		next int
	)
	e := newHostileEnv(t, func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		i := next
		next++
		mu.Unlock()
		if i%2 == 0 && i/2 < len(answers) {
			answers[i/2](w, r)
			return
		}
		writeRaw(w, 200, eventList(fmt.Sprintf("good-%d", i), oneEvent))
	})
	read, _ := e.reader(t, kindV2, e.s.client(func(c *symphony.ClientConfig) { c.MaxBodyBytes = 64 << 10 }))
	for i := range 2 * len(answers) {
		b, err := read(context.Background())
		if i%2 == 0 {
			if err != nil && symphony.Classify(err) == symphony.ClassFatal {
				t.Fatalf("answer %d: fatal %v", i/2, err)
			}
			continue
		}
		if err != nil || b.AckID != fmt.Sprintf("good-%d", i) {
			t.Fatalf("read %d after hostile answer %d: batch %+v, err %v", i, i/2, b, err)
		}
	}
}
