package symphony

import (
	"flag"
	"fmt"
	"os"
	"strings"
	"testing"
)

// samplesGolden pins the Msg-Id and routing fields of every event in
// ../shared/symphony-samples (a conformance test: it needs ../shared, see
// samplesRoot), and the ackId of each event list. Lines are
// file#index <TAB> GoldenResult, file <TAB> ackId=..., file <TAB> refused.
const samplesGolden = "testdata/msgid-golden-samples.txt"

func TestMsgIDGoldenSamples(t *testing.T) {
	var b strings.Builder
	for _, s := range eventSamples {
		body := readSample(t, s.file)
		decode := DecodeEventList
		if s.array {
			decode = DecodeEventArray
		}
		batch, err := decode(body)
		if err != nil {
			t.Fatalf("%s: %v", s.file, err)
		}
		fmt.Fprintf(&b, "%s\tackId=%q\n", s.file, batch.AckID)
		for i := range batch.Events {
			fmt.Fprintf(&b, "%s#%d\t%s\n", s.file, i, GoldenResult(&batch.Events[i]))
		}
	}
	for _, f := range nonEventSamples {
		if _, err := DecodeEventList(readSample(t, f)); err != nil {
			fmt.Fprintf(&b, "%s\trefused\n", f)
		} else {
			fmt.Fprintf(&b, "%s\taccepted\n", f)
		}
	}
	if update := flag.Lookup("update-golden"); update != nil && update.Value.String() == "true" {
		if err := os.WriteFile(samplesGolden, []byte(b.String()), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(samplesGolden)
	if err != nil {
		t.Fatal(err)
	}
	if got := b.String(); got != string(want) {
		t.Errorf("samples decode differently from %s:\n got:\n%s\nwant:\n%s", samplesGolden, got, want)
	}
}
