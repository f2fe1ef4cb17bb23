package symphony_test

import (
	"bufio"
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"

	"github.com/symbridge/symbridge/pkg/symphony"
	"github.com/symbridge/symbridge/pkg/symphony/symphonytest"
	"github.com/symbridge/symbridge/test/bench/benchdata"
)

var updateGolden = flag.Bool("update-golden", false, "rewrite the Msg-Id golden files from the current decoder")

// corpusGolden pins, for every event of the repository's own corpus, the
// Msg-Id and routing fields the decoder gives it. A Msg-Id that changes
// breaks JetStream's de-duplication across an upgrade: the decoder may be
// rewritten, these lines may not change. Each line is
// name <TAB> the event (Go-quoted) <TAB> symphony.GoldenResult.
const corpusGolden = "testdata/msgid-golden.txt"

type goldenEvent struct{ name, raw, result string }

// goldenCorpusEvents gathers the corpus (used by -update-golden only: the
// file keeps the events, so a change of the generator does not change it).
func goldenCorpusEvents(t *testing.T) []goldenEvent {
	var out []goldenEvent
	add := func(name string, raw []byte) { out = append(out, goldenEvent{name: name, raw: string(raw)}) }
	for i, raw := range symphony.GoldenCorpusEvents() {
		add(fmt.Sprintf("seed/%d", i), []byte(raw))
	}
	for _, f := range fuzzCorpusFiles(t, "FuzzParseEvent") {
		add("fuzz/"+filepath.Base(f), fuzzCorpusBytes(t, f))
	}
	for i, raw := range semanticEdges {
		add(fmt.Sprintf("edge/%d", i), []byte(raw))
	}
	// hostile_test.go's odd events.
	add("hostile/invalid-utf8", []byte("{\"id\":\"e\xff1\",\"type\":\"MESSAGESENT\",\"timestamp\":1700000000000,"+
		"\"payload\":{\"messageSent\":{\"message\":{\"messageId\":\"m\xc3\x28\",\"message\":\"<p>\xed\xa0\x80 \xf8\x88\x80\x80\x80</p>\","+
		"\"stream\":{\"streamId\":\"s1\",\"streamType\":\"ROOM\"}}}}}"))
	add("hostile/invalid-utf8-no-id", []byte("{\"type\":\"MESSAGESENT\",\"timestamp\":1,"+
		"\"payload\":{\"messageSent\":{\"message\":{\"messageId\":\"m\xc3\x28\",\"stream\":{\"streamId\":\"s\xff\"}}}}}"))
	add("hostile/deep-9990", []byte(deepEvent(9990)))
	add("hostile/deep-10001", []byte(deepEvent(10001)))
	add("hostile/oneEvent", []byte(oneEvent))
	// The simulator's generator: every type, without id, standard base64,
	// shared ids, unknown types; and the benchmarks' padded events.
	g := symphonytest.NewGenerator(symphonytest.GeneratorConfig{Seed: 10, NoIDRate: 0.2,
		StdBase64Rate: 0.2, SharedIDRate: 0.2, UnknownTypeRate: 0.1})
	for i, raw := range append(g.All(), g.Mix(300)...) {
		add(fmt.Sprintf("generator/%d", i), raw)
	}
	for i, raw := range benchdata.Events(100, 1024, 1) {
		add(fmt.Sprintf("bench/%d", i), raw)
	}
	return out
}

func fuzzCorpusFiles(t *testing.T, target string) []string {
	t.Helper()
	files, err := filepath.Glob(filepath.Join("testdata", "fuzz", target, "*"))
	if err != nil {
		t.Fatal(err)
	}
	sort.Strings(files)
	return files
}

// fuzzCorpusBytes reads a one-value fuzz corpus file ([]byte("...")).
func fuzzCorpusBytes(t *testing.T, file string) []byte {
	t.Helper()
	b, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	if len(lines) != 2 || !strings.HasPrefix(lines[1], "[]byte(") {
		t.Fatalf("%s: not a one-value []byte corpus file", file)
	}
	s, err := strconv.Unquote(strings.TrimSuffix(strings.TrimPrefix(lines[1], "[]byte("), ")"))
	if err != nil {
		t.Fatalf("%s: %v", file, err)
	}
	return []byte(s)
}

func readGolden(t *testing.T) []goldenEvent {
	t.Helper()
	f, err := os.Open(corpusGolden)
	if err != nil {
		t.Fatalf("%v (go test -run TestMsgIDGoldenCorpus -update-golden writes it)", err)
	}
	defer f.Close()
	var out []goldenEvent
	sc := bufio.NewScanner(f)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		parts := strings.Split(sc.Text(), "\t")
		if len(parts) != 3 {
			t.Fatalf("%s: malformed line %.80q", corpusGolden, sc.Text())
		}
		raw, err := strconv.Unquote(parts[1])
		if err != nil {
			t.Fatalf("%s: %s: %v", corpusGolden, parts[0], err)
		}
		out = append(out, goldenEvent{parts[0], raw, parts[2]})
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

// TestMsgIDGoldenCorpus: every corpus event decodes to the pinned Msg-Id and
// fields, alone (ParseEvent), in an event list and in an event array.
func TestMsgIDGoldenCorpus(t *testing.T) {
	if *updateGolden {
		var b bytes.Buffer
		for _, ev := range goldenCorpusEvents(t) {
			parsed := symphony.ParseEvent([]byte(ev.raw))
			fmt.Fprintf(&b, "%s\t%s\t%s\n", ev.name, strconv.Quote(ev.raw), symphony.GoldenResult(&parsed))
		}
		if err := os.WriteFile(corpusGolden, b.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	golden := readGolden(t)
	names := map[string]bool{}
	var valid []goldenEvent
	for _, g := range golden {
		names[g.name] = true
		ev := symphony.ParseEvent([]byte(g.raw))
		if got := symphony.GoldenResult(&ev); got != g.result {
			t.Errorf("%s: ParseEvent\n got %s\nwant %s\nevent %.200q", g.name, got, g.result, g.raw)
		}
		if json.Valid([]byte(g.raw)) {
			valid = append(valid, g)
		}
	}
	for _, f := range fuzzCorpusFiles(t, "FuzzParseEvent") {
		if !names["fuzz/"+filepath.Base(f)] {
			t.Errorf("fuzz corpus entry %s is not in %s: run go test -run TestMsgIDGoldenCorpus -update-golden", f, corpusGolden)
		}
	}
	raws := make([][]byte, len(valid))
	for i, g := range valid {
		raws[i] = []byte(g.raw)
	}
	list, err := symphony.DecodeEventList(benchdata.EventList(raws, "golden"))
	if err != nil || list.AckID != "golden" {
		t.Fatalf("event list: ackId %q, %v", list.AckID, err)
	}
	array, err := symphony.DecodeEventArray([]byte("[" + string(bytes.Join(raws, []byte(",\n"))) + "]"))
	if err != nil {
		t.Fatalf("event array: %v", err)
	}
	for what, evs := range map[string][]symphony.Event{"list": list.Events, "array": array.Events} {
		if len(evs) != len(valid) {
			t.Fatalf("%s: %d events, want %d", what, len(evs), len(valid))
		}
		for i, g := range valid {
			if got := symphony.GoldenResult(&evs[i]); got != g.result {
				t.Errorf("%s: in an event %s\n got %s\nwant %s", g.name, what, got, g.result)
			}
		}
	}
}

// semanticEdges are encoding/json v1 behaviours the decoder keeps: case
// folding (Unicode too), escaped keys, the last duplicate winning and
// merging into what an earlier one set, null leaving a string as it was,
// numbers in every form, invalid UTF-8 becoming U+FFFD.
var semanticEdges = []string{
	`{"ID":"a","TYPE":"X","TimeStamp":5,"MESSAGEID":"m"}`,
	`{"\u0069d":"a","typ\u0065":"ROOMCREATED","p\u0061yload":{"roomCreated":{"str\u0065am":{"streamId":"s\u002b"}}}}`,
	`{"id":"a","type":"X","\u212a":1,"\u017ftream":2}`,
	`{"type":"ROOMCREATED","payload":{"roomCreated":{"\u017ftream":{"\u017ftreamId":"s"}}}}`,
	`{"type":"USERJOINEDROOM","payload":{"userJoinedRoom":{"affectedUser":{"userId":1}},"userJoinedRoom":{"affectedUser":{"userId":2}}}}`,
	`{"id":"a","id":null,"type":"X"}`,
	`{"id":"a","type":"X","messageId":"m","messageId":null}`,
	`{"id":"a","type":"MESSAGESENT","payload":{"messageSent":{"message":{"messageId":"m","stream":{"streamId":"x"}},"message":{"stream":{"streamType":"IM"}}}}}`,
	`{"id":"a","type":"ROOMCREATED","payload":{"roomCreated":{"stream":{"streamId":"x"},"stream":null}}}`,
	`{"id":"a","type":"ROOMCREATED","payload":{"roomCreated":{"stream":{"streamId":"x"},"stream":{"streamType":"ROOM"}}}}`,
	`{"id":"a","type":"USERREQUESTEDTOJOINROOM","payload":{"userRequestedToJoinRoom":{"affectedUsers":[{"userId":1},{"userId":2}],"affectedUsers":[{},null]}}}`,
	`{"id":"a","type":"USERREQUESTEDTOJOINROOM","payload":{"userRequestedToJoinRoom":{"affectedUsers":[{"userId":1}],"affectedUsers":[]}}}`,
	`{"id":"a","type":"USERREQUESTEDTOJOINROOM","payload":{"userRequestedToJoinRoom":{"affectedUsers":[{"userId":1}],"affectedUsers":null}}}`,
	`{"id":"a","type":"X","initiator":{"user":{"userId":1}},"initiator":{"user":{}}}`,
	`{"id":"a","type":"X","initiator":{"user":{"userId":1}},"initiator":{}}`,
	`{"id":"a","type":"X","initiator":{"user":{"userId":1}},"initiator":null}`,
	`{"id":"a","type":"X","initiator":{"user":{"userId":1,"userId":null}}}`,
	`{"id":"a","type":"X","payload":{"x":{"stream":{"streamId":"1"}}},"payload":{"y":{}}}`,
	`{"id":"a","type":"X","payload":{"x":{"stream":{"streamId":"1"}}},"payload":null}`,
	`{"id":"a","type":"X","payload":{"x":{"stream":{"streamId":"1"}}},"payload":{}}`,
	`{"id":"a","type":"X","payload":{"x":{"stream":{"streamId":"1"}},"x":{"stream":{"streamType":"IM"}}}}`,
	`{"id":"a","type":"ROOMCREATED","payload":{"roomCreated":{"stream":{"streamId":"s"}},"roomcreated":{"stream":{"streamId":"t"}}}}`,
	`{"id":"a","type":"ROOMCREATED","payload":{"RoomCreated":{"stream":{"streamId":"s"}}}}`,
	`{"id":"a","type":"ROOMCREATED","payload":{"ro\u006fmCreated":{"stream":{"streamId":"s"}}}}`,
	`{"id":"a","type":"X","timestamp":"12","initiator":{"user":{"userId":"-7"}}}`,
	`{"id":"a","type":"X","timestamp":-0,"initiator":{"user":{"userId":9223372036854775807}}}`,
	`{"id":"a","type":"X","timestamp":-9223372036854775808}`,
	`{"id":"a","type":"X","timestamp":9223372036854775808}`,
	`{"id":"a","type":"X","timestamp":1.5}`,
	`{"id":"a","type":"X","timestamp":1E2}`,
	`{"id":"a","type":"X","timestamp":"1e2"}`,
	`{"id":"a","type":"X","timestamp":""}`,
	`{"id":"a","type":"X","timestamp":" 1"}`,
	`{"id":"a","type":"X","timestamp":true}`,
	`{"id":"a","type":"X","timestamp":12,"timestamp":null}`,
	`{"id":"a","type":"X","timestamp":"0012"}`,
	`{"id":"a\ud800b\udc00\ud83d\ude00","type":"X\u0000","messageId":"\/\b\f\n\r\t\\\""}`,
	"{\"id\":\"a\xffb\xc3\",\"type\":\"X\xed\xa0\x80\",\"messageId\":\"\xf4\x90\x80\x80\"}",
	"{\"id\":\"a\",\"type\":\"ROOMCREATED\",\"payload\":{\"roomCreated\":{\"stream\":{\"streamId\":\"s\xff+\",\"streamType\":\"R\xc0\"}}}}",
	"{\"type\":\"X\",\"payload\":{\"k\xff\":{\"stream\":{\"streamId\":\"s\"}}}}",
	"{\"t\xffype\":\"X\",\"type\":\"Y\"}",
	`{"id":"a","type":"X","streamId":"top","stream":{"streamId":"s"}}`,
	`{"id":"a","type":"MESSAGESENT","payload":{"messageSent":{"messageId":"p","formMessageId":"f","message":{"messageId":""}}}}`,
	`{"id":"a","type":"ELEMENTS","payload":{"x":{"formMessageId":"f","stream":{}}}}`,
	`{"id":"a","type":"CONNECTIONREQUESTED","payload":{"connectionRequested":{"toUser":{"userId":1},"fromUser":{"userId":2},"affectedUser":{"userId":3},"affectedUsers":[{"userId":4},{"userId":"5"}]}}}`,
	`{"id":"a","type":"X","payload":{"x":{"affectedUsers":{}}}}`,
	`{"id":"a","type":"X","payload":{"x":{"stream":[]}}}`,
	`{"id":"a","type":"X","payload":{"x":{"stream":{"streamId":5}}}}`,
	`{"id":"","type":"X","timestamp":3}`,
	`{"type":"X","payload":{"b":{"z":1,"a":[1,2.50,"\u00e9"]}}}`,
	`{"type":"X","payload":null,"extra":{"b":1,"a":2}}`,
}
