package bridge_test

import (
	"bytes"
	"context"
	"fmt"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/cloudevents/sdk-go/v2/binding"
	"github.com/cloudevents/sdk-go/v2/binding/spec"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/symbridge/symbridge/pkg/bridge"
	"github.com/symbridge/symbridge/pkg/symphony"
)

// natsCEMessage reads a NATS message in CloudEvents binary mode, as the
// CloudEvents NATS protocol binding describes it: every ce-* header is an
// attribute (or an extension), its value percent-decoded; the payload is the
// data.
type natsCEMessage struct {
	h    nats.Header
	data []byte
}

var ceSpecs = spec.WithPrefix("ce-")

func (m natsCEMessage) ReadEncoding() binding.Encoding {
	if m.h.Get(ceSpecs.PrefixedSpecVersionName()) != "" {
		return binding.EncodingBinary
	}
	return binding.EncodingUnknown
}

func (m natsCEMessage) ReadStructured(context.Context, binding.StructuredWriter) error {
	return binding.ErrNotStructured
}

func (m natsCEMessage) ReadBinary(_ context.Context, w binding.BinaryWriter) error {
	v := ceSpecs.Version(m.h.Get(ceSpecs.PrefixedSpecVersionName()))
	if v == nil {
		return binding.ErrNotBinary
	}
	for k, vals := range m.h {
		if !strings.HasPrefix(k, "ce-") || len(vals) == 0 {
			continue
		}
		val, err := url.PathUnescape(vals[0])
		if err != nil {
			return fmt.Errorf("header %s: %w", k, err)
		}
		if attr := v.Attribute(k); attr != nil {
			err = w.SetAttribute(attr, val)
		} else {
			err = w.SetExtension(strings.TrimPrefix(k, "ce-"), val)
		}
		if err != nil {
			return fmt.Errorf("header %s: %w", k, err)
		}
	}
	return w.SetData(bytes.NewReader(m.data))
}

func (m natsCEMessage) GetAttribute(k spec.Kind) (spec.Attribute, any) {
	v := ceSpecs.Version(m.h.Get(ceSpecs.PrefixedSpecVersionName()))
	if v == nil {
		return nil, nil
	}
	attr := v.AttributeFromKind(k)
	if attr == nil {
		return nil, nil
	}
	if vals := m.h[attr.PrefixedName()]; len(vals) > 0 {
		if val, err := url.PathUnescape(vals[0]); err == nil {
			return attr, val
		}
	}
	return attr, nil
}

func (m natsCEMessage) GetExtension(name string) any {
	if vals := m.h["ce-"+name]; len(vals) > 0 {
		if val, err := url.PathUnescape(vals[0]); err == nil {
			return val
		}
	}
	return nil
}

func (m natsCEMessage) Finish(error) error { return nil }

var (
	_ binding.Message               = natsCEMessage{}
	_ binding.MessageMetadataReader = natsCEMessage{}
)

func TestStoredMessagesAreCloudEvents(t *testing.T) {
	e := setup(t, bridge.StreamConfig{})
	raws := [][]byte{messageSent(1, "s"), connectionRequested(2), imCreated(3), unknownType(4),
		[]byte(`{"id":"odd id","type":"WEIRD \"TYPE\" é","payload":{}}`)} // no timestamp, odd characters
	f := &feed{batches: []symphony.Batch{batch("a1", raws...)}}
	b, err := bridge.New(testConfig(t), f, e.js)
	if err != nil {
		t.Fatal(err)
	}
	runUntilAcked(t, b, f, 1)
	msgs := storedMsgs(t, e.check)
	if len(msgs) != len(raws) {
		t.Fatalf("stored %d, want %d", len(msgs), len(raws))
	}
	for i, m := range msgs {
		ev := symphony.ParseEvent(raws[i])
		ce, err := binding.ToEvent(t.Context(), natsCEMessage{m.Header, m.Data})
		if err != nil {
			t.Fatalf("msg %d: ToEvent: %v", i, err)
		}
		if err := ce.Validate(); err != nil {
			t.Errorf("msg %d: Validate: %v", i, err)
		}
		if ce.ID() != m.Header.Get(jetstream.MsgIDHeader) || ce.ID() != symphony.MsgID(&ev) {
			t.Errorf("msg %d: id %q, want the Msg-Id", i, ce.ID())
		}
		if ce.Source() != "symphony://acme" {
			t.Errorf("msg %d: source %q", i, ce.Source())
		}
		if want := "com.symphony.event." + strings.ToLower(ev.Type); ce.Type() != want {
			t.Errorf("msg %d: type %q, want %q", i, ce.Type(), want)
		}
		if ce.SpecVersion() != "1.0" || ce.DataContentType() != "application/json" {
			t.Errorf("msg %d: specversion %q, datacontenttype %q", i, ce.SpecVersion(), ce.DataContentType())
		}
		if ev.Timestamp != 0 && !ce.Time().Equal(time.UnixMilli(ev.Timestamp)) {
			t.Errorf("msg %d: time %s, want %s", i, ce.Time(), time.UnixMilli(ev.Timestamp).UTC())
		}
		if ev.Timestamp == 0 && !ce.Time().IsZero() {
			t.Errorf("msg %d: time %s for an event without timestamp", i, ce.Time())
		}
		if !bytes.Equal(ce.Data(), raws[i]) {
			t.Errorf("msg %d: data differs from the event", i)
		}
	}
}
