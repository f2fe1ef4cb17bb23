package symphony

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
)

// DatafeedIDFileName is the BDK's datafeed v1 id file name, used when
// DatafeedV1Options.IDFilePath is a directory.
const DatafeedIDFileName = "datafeed.id"

// DatafeedV1Options configures a [DatafeedV1].
type DatafeedV1Options struct {
	// IDFilePath (datafeed.idFilePath) is where the feed id is kept across
	// restarts: a file, or a directory (an existing one, or a path ending in
	// a separator) that gets a "datafeed.id" file. Default "./".
	IDFilePath string
}

// DatafeedV1 reads a legacy datafeed v1 (/agent/v4/datafeed), for Agents
// without datafeed v2.
//
// Delivery is AT MOST ONCE: v1 has no ackId, a read removes the events from
// the feed, so events read but not yet published when the process dies are
// lost; and a feed that expires (its unread queue overflows, or a 400) is
// replaced by a new one that does not have what the old one held. Use one
// reader only (the Agent allows one consumer per feed), and do not count v1
// in any zero-loss guarantee.
//
// The feed id is kept in the BDK's id file, "<id>@<agentBaseURL>", so a
// bridge and a BDK bot configured alike resume the same feed. Read must not
// be called concurrently.
type DatafeedV1 struct {
	c    *Client
	path string

	mu        sync.Mutex
	id        string
	persisted bool // id is in the id file
	recreated bool // a new feed replaced the old one; not yet reported
}

// NewDatafeedV1 prepares a datafeed v1 reader; nothing is contacted or read
// until [DatafeedV1.Open] or the first [DatafeedV1.Read].
func NewDatafeedV1(c *Client, opts DatafeedV1Options) *DatafeedV1 {
	p := opts.IDFilePath
	if p == "" {
		p = "." + string(filepath.Separator)
	}
	return &DatafeedV1{c: c, path: p}
}

// Name identifies the feed in logs, e.g. "datafeed v1 8e7c8672-220".
func (f *DatafeedV1) Name() string {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.id == "" {
		return "datafeed v1 (not open)"
	}
	return "datafeed v1 " + f.id
}

// IDFile is the id file in use.
func (f *DatafeedV1) IDFile() string {
	if strings.HasSuffix(f.path, "/") || strings.HasSuffix(f.path, string(filepath.Separator)) {
		return filepath.Join(f.path, DatafeedIDFileName)
	}
	if fi, err := os.Stat(f.path); err == nil && fi.IsDir() {
		return filepath.Join(f.path, DatafeedIDFileName)
	}
	return f.path
}

// Open returns the feed id: the one in the id file, or a new feed's
// (POST /agent/v4/datafeed/create), which it writes to the id file. An id
// file that cannot be written is an error: a restart would otherwise lose
// track of the feed. A later Open retries the write.
func (f *DatafeedV1) Open(ctx context.Context) (string, error) {
	f.mu.Lock()
	id, persisted := f.id, f.persisted
	f.mu.Unlock()
	if id != "" && persisted {
		return id, nil
	}
	if id == "" {
		stored, err := f.load()
		if err != nil {
			return "", err
		}
		if stored != "" {
			f.set(stored, true)
			return stored, nil
		}
		if id, err = f.create(ctx); err != nil {
			return "", err
		}
		f.set(id, false)
	}
	if err := f.save(id); err != nil {
		return "", err
	}
	f.mu.Lock()
	if f.id == id {
		f.persisted = true
	}
	f.mu.Unlock()
	return id, nil
}

func (f *DatafeedV1) set(id string, persisted bool) {
	f.mu.Lock()
	f.id, f.persisted = id, persisted
	f.mu.Unlock()
}

// load reads the id file: "<id>@<agent>" on its first line; a file without
// "@" holds no id (as in the BDK). The stored Agent URL is not checked: an id
// the Agent does not know answers 400 and is replaced.
func (f *DatafeedV1) load() (string, error) {
	path := f.IDFile()
	data, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return "", nil
	}
	if err != nil {
		return "", fmt.Errorf("datafeed v1: read id file: %w", err)
	}
	line, _, _ := bytes.Cut(data, []byte("\n"))
	id, _, found := strings.Cut(strings.TrimSpace(string(line)), "@")
	if !found {
		return "", nil
	}
	return strings.TrimSpace(id), nil
}

// save writes "<id>@<agentURL>" (no newline, like the BDK) atomically: a
// temporary file in the same directory, then a rename.
func (f *DatafeedV1) save(id string) error {
	path := f.IDFile()
	tmp, err := os.CreateTemp(filepath.Dir(path), ".datafeed.id-*")
	if err != nil {
		return fmt.Errorf("datafeed v1 %s: write id file %s: %w", id, path, err)
	}
	defer os.Remove(tmp.Name()) // no-op after the rename
	_, err = tmp.WriteString(id + "@" + f.c.agent)
	if err == nil {
		err = tmp.Sync()
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Chmod(tmp.Name(), 0o644)
	}
	if err == nil {
		err = os.Rename(tmp.Name(), path)
	}
	if err != nil {
		return fmt.Errorf("datafeed v1 %s: write id file %s: %w", id, path, err)
	}
	return nil
}

func (f *DatafeedV1) create(ctx context.Context) (string, error) {
	const op = "create datafeed v1"
	resp, err := f.c.do(ctx, request{op: op, method: http.MethodPost, url: f.c.agent + "/agent/v4/datafeed/create", authed: true})
	if err != nil {
		return "", err
	}
	var feed struct {
		ID string `json:"id"`
	}
	if err := decodeJSON(op, resp, &feed); err != nil {
		return "", err
	}
	if feed.ID == "" {
		return "", fmt.Errorf("%s: %w: no id in the answer", op, ErrBadResponse)
	}
	return feed.ID, nil
}

// Read long-polls the feed (GET /agent/v4/datafeed/{id}/read). ackID is
// ignored: v1 has no acknowledgement. 204 (nothing arrived within the poll)
// is an empty batch. On a 400 (feed expired or unknown) Read creates a new
// feed, saves its id and returns its first batch with FeedRecreated set.
func (f *DatafeedV1) Read(ctx context.Context, _ string) (Batch, error) {
	id, err := f.Open(ctx)
	if err != nil {
		return Batch{}, err
	}
	b, err := f.read(ctx, id)
	if isStatus(err, http.StatusBadRequest) {
		newID, cerr := f.create(ctx)
		if cerr != nil {
			return Batch{}, fmt.Errorf("datafeed v1 %s: %w (%v); creating a new one: %w", id, ErrFeedGone, err, cerr)
		}
		f.mu.Lock()
		f.id, f.persisted, f.recreated = newID, false, true
		f.mu.Unlock()
		if id, err = f.Open(ctx); err != nil {
			return Batch{}, err
		}
		b, err = f.read(ctx, id)
	}
	if err != nil {
		return Batch{}, err
	}
	f.mu.Lock()
	b.FeedRecreated, f.recreated = f.recreated, false
	f.mu.Unlock()
	return b, nil
}

func (f *DatafeedV1) read(ctx context.Context, id string) (Batch, error) {
	op := "read datafeed v1 " + id
	resp, err := f.c.do(ctx, request{
		op: op, method: http.MethodGet, url: f.c.agent + "/agent/v4/datafeed/" + url.PathEscape(id) + "/read", authed: true,
	})
	if err != nil {
		return Batch{}, err
	}
	if resp.status == http.StatusNoContent {
		return Batch{FeedID: id}, nil
	}
	b, err := decodeBatch(op, resp, true)
	if err != nil {
		return Batch{}, err
	}
	b.FeedID = id
	return b, nil
}
