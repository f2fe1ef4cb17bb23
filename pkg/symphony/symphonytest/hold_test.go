package symphonytest

import (
	"context"
	"encoding/json"
	"slices"
	"testing"
	"time"
)

// listAsync lists the feeds with tag in a goroutine; the answer arrives on
// the returned channel (the goroutine ends with the request).
func listAsync(ctx context.Context, c *client, tag string) <-chan response {
	ch := make(chan response, 1)
	go func() { ch <- c.do(ctx, "GET", "/agent/v5/datafeeds?tag="+tag, nil) }()
	return ch
}

func feedIDs(t *testing.T, r response) []string {
	t.Helper()
	if r.err != nil || r.status != 200 {
		t.Fatalf("list: status %d err %v: %s", r.status, r.err, r.body)
	}
	var feeds []v5Datafeed
	if err := json.Unmarshal(r.body, &feeds); err != nil {
		t.Fatalf("list: %v: %s", err, r.body)
	}
	ids := []string{}
	for _, f := range feeds {
		ids = append(ids, f.ID)
	}
	return ids
}

// loggedIn returns n clients of the simulator at base, logged in.
func loggedIn(t *testing.T, base string, n int) []*client {
	cs := make([]*client, n)
	for i := range cs {
		cs[i] = newClient(t, base)
		cs[i].login()
	}
	return cs
}

func TestHoldListsAnswersTogetherOnce(t *testing.T) {
	s := newSim(t, Config{})
	clients := loggedIn(t, s.url, 3)
	h := s.HoldLists(3)

	// An untagged list is not held.
	if ids := feedIDs(t, clients[0].call("GET", "/agent/v5/datafeeds", nil)); len(ids) != 0 {
		t.Fatalf("untagged list = %v, want none", ids)
	}
	var answers []<-chan response
	for i, c := range clients {
		answers = append(answers, listAsync(context.Background(), c, "shared"))
		if i == len(clients)-1 {
			break
		}
		eventually(t, 10*time.Second, "the list to be held", func() bool { return h.Waiting() == i+1 })
		for _, ch := range answers {
			select {
			case r := <-ch:
				t.Fatalf("a held list was answered with %d of 3 waiting: %d %s", i+1, r.status, r.body)
			default:
			}
		}
	}
	for i, ch := range answers {
		if ids := feedIDs(t, <-ch); len(ids) != 0 {
			t.Errorf("held list %d = %v, want no feed", i, ids)
		}
	}
	select {
	case <-h.Released():
	default:
		t.Error("Released not closed after the release")
	}
	if got := h.Listed(); !slices.Equal(got, []int{0, 0, 0}) {
		t.Errorf("Listed = %v, want [0 0 0]", got)
	}

	// One-shot: a feed created now is seen by the next list at once.
	id := clients[0].createFeed(map[string]any{"tag": "shared"})
	if ids := feedIDs(t, clients[1].call("GET", "/agent/v5/datafeeds?tag=shared", nil)); !slices.Equal(ids, []string{id}) {
		t.Errorf("list after the release = %v, want [%s]", ids, id)
	}
	if st := s.Stats(); st.HeldLists != 3 || st.Lists != 5 || st.FeedsCreated != 1 {
		t.Errorf("Stats: held lists %d, lists %d, feeds created %d; want 3, 5, 1", st.HeldLists, st.Lists, st.FeedsCreated)
	}
}

// The answers are computed at the release: a feed created while lists wait
// is in all of them.
func TestHoldListsAnswersAsOfTheRelease(t *testing.T) {
	s := newSim(t, Config{})
	cs := loggedIn(t, s.url, 2)
	a, b := cs[0], cs[1]
	h := s.HoldLists(2)
	first := listAsync(context.Background(), a, "x")
	eventually(t, 10*time.Second, "the list to be held", func() bool { return h.Waiting() == 1 })
	id := b.createFeed(map[string]any{"tag": "x"})
	second := listAsync(context.Background(), b, "x")
	for _, ch := range []<-chan response{first, second} {
		if ids := feedIDs(t, <-ch); !slices.Equal(ids, []string{id}) {
			t.Errorf("held list = %v, want [%s]", ids, id)
		}
	}
	if got := h.Listed(); !slices.Equal(got, []int{1, 1}) {
		t.Errorf("Listed = %v, want [1 1]", got)
	}
}

func TestHoldListsClientGoneAndClose(t *testing.T) {
	s := newSim(t, Config{})
	cs := loggedIn(t, s.url, 2)
	a, b := cs[0], cs[1]
	h := s.HoldLists(2)
	ctx, cancel := context.WithCancel(context.Background())
	gone := listAsync(ctx, a, "x")
	eventually(t, 10*time.Second, "the list to be held", func() bool { return h.Waiting() == 1 })
	cancel()
	if r := <-gone; r.err == nil {
		t.Fatalf("cancelled list answered: %d %s", r.status, r.body)
	}
	eventually(t, 10*time.Second, "the abandoned list to stop counting", func() bool { return h.Waiting() == 0 })

	held := listAsync(context.Background(), b, "x")
	eventually(t, 10*time.Second, "the list to be held", func() bool { return h.Waiting() == 1 })
	select {
	case r := <-held:
		t.Fatalf("one list of two answered after the other went away: %d %s", r.status, r.body)
	default:
	}
	s.Close()
	if ids := feedIDs(t, <-held); len(ids) != 0 {
		t.Errorf("list released by Close = %v, want none", ids)
	}
	if got := h.Listed(); !slices.Equal(got, []int{0}) {
		t.Errorf("Listed = %v, want [0]", got)
	}
}

func TestHoldListsReplacedAndZero(t *testing.T) {
	s := newSim(t, Config{})
	c := newClient(t, s.url)
	c.login()
	first := s.HoldLists(5)
	held := listAsync(context.Background(), c, "x")
	eventually(t, 10*time.Second, "the list to be held", func() bool { return first.Waiting() == 1 })
	second := s.HoldLists(0)
	if ids := feedIDs(t, <-held); len(ids) != 0 {
		t.Errorf("list released by the next HoldLists = %v, want none", ids)
	}
	for name, h := range map[string]*ListHold{"replaced": first, "HoldLists(0)": second} {
		select {
		case <-h.Released():
		default:
			t.Errorf("%s hold not released", name)
		}
	}
	feedIDs(t, c.call("GET", "/agent/v5/datafeeds?tag=x", nil)) // not held
}
