package symphony_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"reflect"
	"sync"
	"testing"

	"github.com/symbridge/symbridge/pkg/symphony"
)

// v1Stub serves /agent/v4/datafeed: create and read.
type v1Stub struct {
	mu      sync.Mutex
	creates int
	reads   []string
	read    func(id string) (int, string)
}

func newV1Stub(t *testing.T, s *stubSymphony) *v1Stub {
	v := &v1Stub{}
	s.Mux.HandleFunc("POST /agent/v4/datafeed/create", func(w http.ResponseWriter, r *http.Request) {
		if !s.authorized(w, r) {
			return
		}
		v.mu.Lock()
		v.creates++
		id := fmt.Sprintf("v1feed-%d", v.creates)
		v.mu.Unlock()
		writeJSON(w, 200, map[string]string{"id": id})
	})
	s.Mux.HandleFunc("GET /agent/v4/datafeed/{id}/read", func(w http.ResponseWriter, r *http.Request) {
		if !s.authorized(w, r) {
			return
		}
		v.mu.Lock()
		defer v.mu.Unlock()
		id := r.PathValue("id")
		v.reads = append(v.reads, id)
		st, b := 204, ""
		if v.read != nil {
			st, b = v.read(id)
		}
		if st == 204 {
			w.WriteHeader(204)
			return
		}
		writeRaw(w, st, b)
	})
	return v
}

func (v *v1Stub) with(f func(v *v1Stub)) {
	v.mu.Lock()
	defer v.mu.Unlock()
	f(v)
}

func readFile(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestDatafeedV1_CreatesAndSavesID(t *testing.T) {
	s := newStub(t)
	v := newV1Stub(t, s)
	dir := t.TempDir()
	c := s.client()
	f := symphony.NewDatafeedV1(c, symphony.DatafeedV1Options{IDFilePath: dir})
	if f.IDFile() != filepath.Join(dir, "datafeed.id") {
		t.Errorf("IDFile() = %q for a directory", f.IDFile())
	}
	ctx := context.Background()
	id, err := f.Open(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if id != "v1feed-1" || f.Name() != "datafeed v1 v1feed-1" {
		t.Errorf("Open = %q, Name() = %q", id, f.Name())
	}
	if got, want := readFile(t, f.IDFile()), "v1feed-1@"+c.AgentURL(); got != want {
		t.Errorf("id file = %q, want %q", got, want)
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 1 {
		t.Errorf("directory holds %d entries, want only datafeed.id (no temporary files left)", len(entries))
	}

	// 204: an empty batch.
	b, err := f.Read(ctx, "ignored")
	if err != nil || len(b.Events) != 0 || b.FeedID != "v1feed-1" || b.AckID != "" || b.FeedRecreated {
		t.Fatalf("Read (204) = %+v, %v", b, err)
	}

	// A new reader resumes the saved feed without creating one.
	f2 := symphony.NewDatafeedV1(s.client(), symphony.DatafeedV1Options{IDFilePath: dir + string(filepath.Separator)})
	if id, err := f2.Open(ctx); err != nil || id != "v1feed-1" {
		t.Errorf("second Open = %q, %v", id, err)
	}
	v.with(func(v *v1Stub) {
		if v.creates != 1 {
			t.Errorf("creates = %d, want 1", v.creates)
		}
	})
}

// TestDatafeedV1_ReadsBDKIDFile reuses the feed of a BDK id file
// ("<id>@<agent host>:<port>") written here; its "samples" subtest, a
// conformance test, uses the BDK's real id file and events from ../shared.
func TestDatafeedV1_ReadsBDKIDFile(t *testing.T) {
	t.Run("fixture", func(t *testing.T) {
		checkReadsBDKIDFile(t, []byte("8e7c8672-220@agent.example.com:8443\n"), []byte("["+oneEvent+"]"))
	})
	t.Run("samples", func(t *testing.T) {
		data := readShared(t, "symphony-samples", "bdk-java", "datafeedId")
		events := readShared(t, "symphony-samples", "bdk-java", "read_datafeed.json")
		checkReadsBDKIDFile(t, data, events)
	})
}

// checkReadsBDKIDFile opens a v1 feed from a BDK id file holding data (the
// feed 8e7c8672-220) and reads events, an array of one MESSAGESENT.
func checkReadsBDKIDFile(t *testing.T, data, events []byte) {
	path := filepath.Join(t.TempDir(), "my.id") // a file path, as datafeed.idFilePath may be
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
	s := newStub(t)
	v := newV1Stub(t, s)
	v.with(func(v *v1Stub) { v.read = func(string) (int, string) { return 200, string(events) } })
	f := symphony.NewDatafeedV1(s.client(), symphony.DatafeedV1Options{IDFilePath: path})
	b, err := f.Read(context.Background(), "")
	if err != nil {
		t.Fatal(err)
	}
	if b.FeedID != "8e7c8672-220" || len(b.Events) != 1 || b.Events[0].Err != nil || b.Events[0].Type != symphony.TypeMessageSent {
		t.Errorf("batch = %+v", b)
	}
	v.with(func(v *v1Stub) {
		if v.creates != 0 || !reflect.DeepEqual(v.reads, []string{"8e7c8672-220"}) {
			t.Errorf("creates = %d, reads = %v; want the BDK's feed reused", v.creates, v.reads)
		}
	})
	if got := readFile(t, path); got != string(data) {
		t.Errorf("id file rewritten to %q", got)
	}
}

func TestDatafeedV1_IDFileWithoutAt(t *testing.T) {
	path := filepath.Join(t.TempDir(), "datafeed.id")
	if err := os.WriteFile(path, []byte("just-an-id\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	s := newStub(t)
	newV1Stub(t, s)
	f := symphony.NewDatafeedV1(s.client(), symphony.DatafeedV1Options{IDFilePath: path})
	id, err := f.Open(context.Background())
	if err != nil || id != "v1feed-1" {
		t.Fatalf("Open = %q, %v; a line without @ holds no id", id, err)
	}
}

func TestDatafeedV1_400CreatesNewFeed(t *testing.T) {
	s := newStub(t)
	v := newV1Stub(t, s)
	v.with(func(v *v1Stub) {
		v.read = func(id string) (int, string) {
			if id == "v1feed-1" {
				return 400, `{"code":400,"message":"Could not find a datafeed with the provided id"}`
			}
			return 200, "[" + oneEvent + "]"
		}
	})
	dir := t.TempDir()
	c := s.client()
	f := symphony.NewDatafeedV1(c, symphony.DatafeedV1Options{IDFilePath: dir})
	b, err := f.Read(context.Background(), "")
	if err != nil {
		t.Fatal(err)
	}
	if !b.FeedRecreated || b.FeedID != "v1feed-2" || len(b.Events) != 1 {
		t.Errorf("batch = %+v", b)
	}
	if got := readFile(t, filepath.Join(dir, "datafeed.id")); got != "v1feed-2@"+c.AgentURL() {
		t.Errorf("id file = %q", got)
	}
	if b, err := f.Read(context.Background(), ""); err != nil || b.FeedRecreated {
		t.Errorf("next Read = %+v, %v", b, err)
	}
}

func TestDatafeedV1_UnwritableIDFile(t *testing.T) {
	s := newStub(t)
	v := newV1Stub(t, s)
	missing := filepath.Join(t.TempDir(), "no-such-dir", "datafeed.id")
	f := symphony.NewDatafeedV1(s.client(), symphony.DatafeedV1Options{IDFilePath: missing})
	_, err := f.Read(context.Background(), "")
	if !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("err = %v, want the write error", err)
	}
	// Once the directory exists the same feed is saved, not a new one.
	if err := os.Mkdir(filepath.Dir(missing), 0o700); err != nil {
		t.Fatal(err)
	}
	if _, err := f.Read(context.Background(), ""); err != nil {
		t.Fatal(err)
	}
	v.with(func(v *v1Stub) {
		if v.creates != 1 {
			t.Errorf("creates = %d, want 1", v.creates)
		}
	})
	if got := readFile(t, missing); got != "v1feed-1@"+s.Srv.URL {
		t.Errorf("id file = %q", got)
	}
}
