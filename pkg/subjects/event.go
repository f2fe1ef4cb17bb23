package subjects

import "github.com/symbridge/symbridge/pkg/symphony"

// FromEvent returns the values of ev's subject. pod is the pod's subject
// token from configuration and source the feed kind ("datafeed" or
// "datahose"). A nil ev gives values with only pod and source set.
func FromEvent(ev *symphony.Event, pod, source string) Values {
	v := Values{Pod: pod, Source: source}
	if ev == nil {
		return v
	}
	v.EventType = ev.Type
	v.HasStream = ev.HasStream
	v.StreamType = ev.StreamType
	v.StreamID = ev.StreamID
	return v
}
