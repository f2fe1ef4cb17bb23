package symphonytest

import (
	"encoding/json"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/symbridge/symbridge/pkg/symphony"
	"github.com/symbridge/symbridge/pkg/symphony/symphonytest/spec"
)

// TestSamples checks every JSON file of ../shared/symphony-samples against
// the spec schema that applies to it, decodes its events with pkg/symphony
// and compares its shape with what the simulator and the generator produce.
// A sample file added without a case here fails the test.
func TestSamples(t *testing.T) {
	v, err := spec.NewValidator(specDir(t))
	if err != nil {
		t.Fatal(err)
	}
	dir := samplesDir(t)
	read := func(name string) []byte {
		t.Helper()
		b, err := os.ReadFile(filepath.Join(dir, filepath.FromSlash(name)))
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	checkEvents := func(name string, batch symphony.Batch) {
		t.Helper()
		if len(batch.Events) == 0 {
			t.Errorf("%s: no events", name)
		}
		for _, ev := range batch.Events {
			if ev.Err != nil || ev.Type != symphony.TypeMessageSent || ev.ID == "" || ev.MessageID == "" ||
				!ev.HasStream || ev.StreamID == "" || ev.StreamType != "ROOM" || ev.InitiatorUserID != 1456852 {
				t.Errorf("%s: event decodes to %+v", name, ev)
			}
			if err := v.ValidateEvent(ev.Raw); err != nil {
				t.Errorf("%s: %v", name, err)
			}
			compareShape(t, name, ev.Raw, NewGenerator(GeneratorConfig{}).Event(symphony.TypeMessageSent), "diagnostic")
		}
	}

	cases := map[string]func(name string, data []byte){
		"bdk-java/read_datafeed.json": func(name string, data []byte) {
			mustSchema(t, v, name, "V4EventList", data)
			b, err := symphony.DecodeEventArray(data)
			if err != nil {
				t.Fatal(err)
			}
			checkEvents(name, b)
			if b.Events[0].ID != "ulPr8a:eFFDL7" {
				t.Errorf("%s: id %q", name, b.Events[0].ID)
			}
		},
		"bdk-java-legacy/read_datafeedv2.json": func(name string, data []byte) {
			mustSchema(t, v, name, "V5EventList", data)
			b, err := symphony.DecodeEventList(data)
			if err != nil || b.AckID != "ack_id_string" {
				t.Fatalf("%s: %v %q", name, err, b.AckID)
			}
			checkEvents(name, b)
		},
		"bdk-java-legacy/read_datafeedv5.json": func(name string, data []byte) {
			mustSchema(t, v, name, "V5EventList", data)
			b, err := symphony.DecodeEventList(data)
			if err != nil {
				t.Fatal(err)
			}
			checkEvents(name, b)
		},
		"bdk-java-legacy/create_datafeedv2.json": func(name string, data []byte) {
			mustSchema(t, v, name, "V5Datafeed", data)
			var df v5Datafeed
			decode(t, data, &df)
			if !fanoutID.MatchString(df.ID) {
				t.Errorf("%s: the sample id %q does not match the simulator's format", name, df.ID)
			}
		},
		"bdk-java-legacy/list_datafeedv2.json": func(name string, data []byte) {
			mustSchema(t, v, name, "[]V5Datafeed", data)
			var l []v5Datafeed
			decode(t, data, &l)
			for _, df := range l {
				if !fanoutID.MatchString(df.ID) || !bdkPattern.MatchString(df.ID) {
					t.Errorf("%s: id %q", name, df.ID)
				}
			}
		},
		"bdk-python/agent_info.json": func(name string, data []byte) {
			mustSchema(t, v, name, "AgentInfo", data)
			ours, _ := json.Marshal(agentInfo{Version: DefaultAgentVersion})
			mustSchema(t, v, "simulator info", "AgentInfo", ours)
			compareShape(t, name, data, ours)
		},
		// UserV2 belongs to the pod API, not among the supplied specs: no
		// schema applies. The simulator's sessioninfo must look the same.
		"bdk-java/bot_info.json": func(name string, data []byte) {
			s := newSim(t, Config{})
			c := newClient(t, s.url)
			c.login()
			ours := c.must(200, "GET", "/pod/v2/sessioninfo", nil).body
			compareShape(t, name, data, ours)
		},
	}

	var files []string
	err = filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() && strings.HasSuffix(path, ".json") {
			rel, _ := filepath.Rel(dir, path)
			files = append(files, filepath.ToSlash(rel))
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(files) == 0 {
		t.Fatalf("no sample in %s", dir)
	}
	for _, name := range files {
		check, ok := cases[name]
		if !ok {
			t.Errorf("sample %s has no check", name)
			continue
		}
		t.Run(name, func(t *testing.T) { check(name, read(name)) })
	}
}

func mustSchema(t *testing.T, v *spec.Validator, name, schema string, data []byte) {
	t.Helper()
	if err := v.ValidateSchema(schema, data); err != nil {
		t.Errorf("%s does not match %s: %v", name, schema, err)
	}
}

// compareShape checks that every field path of the sample (minus ignored
// ones) exists in ours with the same JSON kind.
func compareShape(t *testing.T, name string, sample, ours []byte, ignore ...string) {
	t.Helper()
	want, got := shape(t, sample), shape(t, ours)
	var missing []string
	for path, kind := range want {
		if slices.Contains(ignore, path) {
			continue
		}
		if got[path] != kind {
			missing = append(missing, path+" ("+kind+", ours: "+got[path]+")")
		}
	}
	sort.Strings(missing)
	if len(missing) > 0 {
		t.Errorf("%s: the simulator lacks fields of the sample:\n%s", name, strings.Join(missing, "\n"))
	}
}

// shape maps each field path ("a.b", "list[].c") to its JSON kind.
func shape(t *testing.T, data []byte) map[string]string {
	t.Helper()
	var v any
	decode(t, data, &v)
	out := map[string]string{}
	var walk func(prefix string, v any)
	walk = func(prefix string, v any) {
		switch x := v.(type) {
		case map[string]any:
			if prefix != "" {
				out[prefix] = "object"
			}
			for k, e := range x {
				p := k
				if prefix != "" {
					p = prefix + "." + k
				}
				walk(p, e)
			}
		case []any:
			out[prefix] = "array"
			for _, e := range x {
				walk(prefix+"[]", e)
			}
		case string:
			out[prefix] = "string"
		case float64:
			out[prefix] = "number"
		case bool:
			out[prefix] = "bool"
		default:
			out[prefix] = "null"
		}
	}
	walk("", v)
	return out
}
