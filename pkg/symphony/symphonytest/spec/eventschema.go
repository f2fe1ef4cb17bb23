package spec

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"

	"github.com/getkin/kin-openapi/openapi3"

	"github.com/symbridge/symbridge/pkg/symphony"
)

// ErrEventWithoutID is returned by [CheckEvent] when an event breaks no
// rule but the presence of "id". Symphony really sends such events, so
// callers checking what an Agent delivers tolerate it with errors.Is.
var ErrEventWithoutID = errors.New("event has no id")

// ErrStrictEvent is wrapped by every [CheckEvent] failure.
var ErrStrictEvent = errors.New("event breaks the strict event schema")

// StrictEventSchema returns our stricter schema for one real-time event.
// The spec's V4Event leaves every field optional; this one requires what the
// bridge relies on: a non-empty string id, an upper-case type, an integer
// timestamp, an initiator user id, and a payload holding exactly one key,
// the one matching the type (payload.messageSent for MESSAGESENT), with the
// stream (or, for connection events, the other user) where the type keeps
// it. Unknown types need a single object-valued payload key.
func StrictEventSchema() *openapi3.Schema {
	strictOnce.Do(buildStrictSchema)
	return strictSchema
}

var (
	strictOnce   sync.Once
	strictSchema *openapi3.Schema
)

type obj = map[string]any

func buildStrictSchema() {
	nonEmpty := obj{"type": "string", "minLength": 1}
	user := obj{"type": "object", "required": []string{"userId"},
		"properties": obj{"userId": obj{"type": "integer", "minimum": 1}}}
	stream := obj{"type": "object", "required": []string{"streamId"},
		"properties": obj{"streamId": nonEmpty, "streamType": obj{"type": "string"}}}
	message := obj{"type": "object", "required": []string{"messageId", "stream", "message"},
		"properties": obj{"messageId": nonEmpty, "stream": stream, "message": obj{"type": "string"},
			"data": obj{"type": "string"}}}
	withStream := func(extra ...string) obj {
		props := obj{"stream": stream}
		for _, e := range extra {
			switch e {
			case "affectedUser", "toUser", "fromUser":
				props[e] = user
			case "affectedUsers":
				props[e] = obj{"type": "array", "minItems": 1, "items": user}
			}
		}
		return obj{"type": "object", "required": append([]string{"stream"}, extra...), "properties": props}
	}
	bodies := map[string]obj{
		symphony.TypeMessageSent: {"type": "object", "required": []string{"message"},
			"properties": obj{"message": message}},
		symphony.TypeSharedPost: {"type": "object", "required": []string{"message"},
			"properties": obj{"message": message, "sharedMessage": obj{"type": "object"}}},
		symphony.TypeMessageSuppressed: {"type": "object", "required": []string{"messageId", "stream"},
			"properties": obj{"messageId": nonEmpty, "stream": stream}},
		symphony.TypeSymphonyElementsAction: {"type": "object", "required": []string{"stream", "formMessageId", "formId"},
			"properties": obj{"stream": stream, "formMessageId": nonEmpty, "formId": nonEmpty, "formValues": obj{"type": "object"}}},
		symphony.TypeInstantMessageCreated:      withStream(),
		symphony.TypeRoomCreated:                withStream(),
		symphony.TypeRoomUpdated:                withStream(),
		symphony.TypeRoomDeactivated:            withStream(),
		symphony.TypeRoomReactivated:            withStream(),
		symphony.TypeGenericSystemEvent:         withStream(),
		symphony.TypeUserRequestedToJoinRoom:    withStream("affectedUsers"),
		symphony.TypeUserJoinedRoom:             withStream("affectedUser"),
		symphony.TypeUserLeftRoom:               withStream("affectedUser"),
		symphony.TypeRoomMemberPromotedToOwner:  withStream("affectedUser"),
		symphony.TypeRoomMemberDemotedFromOwner: withStream("affectedUser"),
		symphony.TypeConnectionRequested: {"type": "object", "required": []string{"toUser"},
			"properties": obj{"toUser": user}},
		symphony.TypeConnectionAccepted: {"type": "object", "required": []string{"fromUser"},
			"properties": obj{"fromUser": user}},
	}
	known := symphony.KnownTypes()
	branches := make([]any, 0, len(known)+1)
	for _, t := range known {
		key, _ := symphony.PayloadKey(t)
		branches = append(branches, obj{
			"properties": obj{
				"type": obj{"enum": []string{t}},
				"payload": obj{"type": "object", "required": []string{key}, "maxProperties": 1,
					"properties": obj{key: bodies[t]}},
			},
		})
	}
	branches = append(branches, obj{
		"properties": obj{
			"type": obj{"not": obj{"enum": known}},
			"payload": obj{"type": "object", "minProperties": 1, "maxProperties": 1,
				"additionalProperties": obj{"type": "object"}},
		},
	})
	root := obj{
		"type":     "object",
		"required": []string{"id", "type", "timestamp", "initiator", "payload"},
		"properties": obj{
			"id":        nonEmpty,
			"messageId": obj{"type": "string"},
			"type":      obj{"type": "string", "pattern": "^[A-Z][A-Z0-9_]*$"},
			"timestamp": obj{"type": "integer", "format": "int64", "minimum": 1},
			"initiator": obj{"type": "object", "required": []string{"user"}, "properties": obj{"user": user}},
			"payload":   obj{"type": "object"},
		},
		"oneOf": branches,
	}
	data, err := json.Marshal(root)
	if err == nil {
		s := &openapi3.Schema{}
		if err = json.Unmarshal(data, s); err == nil {
			err = s.Validate(context.Background())
		}
		if err == nil {
			strictSchema = s
			return
		}
	}
	// Unreachable unless the literal above is broken; keep the zero schema
	// (accepts anything) rather than panicking, and let tests catch it.
	strictSchema = &openapi3.Schema{}
}

// CheckEvent validates one event against [StrictEventSchema]. An event that
// fails only because it has no "id" yields an error wrapping
// [ErrEventWithoutID]; other failures wrap [ErrStrictEvent].
func CheckEvent(raw []byte) error {
	v, err := decodeJSON(raw)
	if err != nil {
		return fmt.Errorf("%w: %w", ErrStrictEvent, err)
	}
	schema := StrictEventSchema()
	err = schema.VisitJSON(v, openapi3.MultiErrors())
	if err == nil {
		return nil
	}
	if m, ok := v.(map[string]any); ok {
		if _, has := m["id"]; !has {
			m["id"] = "x"
			if schema.VisitJSON(m) == nil {
				return ErrEventWithoutID
			}
		}
	}
	return fmt.Errorf("%w: %w", ErrStrictEvent, err)
}

// decodeJSON decodes a JSON value the way kin-openapi expects (numbers as
// float64), rejecting trailing data.
func decodeJSON(raw []byte) (any, error) {
	dec := json.NewDecoder(bytes.NewReader(raw))
	var v any
	if err := dec.Decode(&v); err != nil {
		return nil, fmt.Errorf("decode JSON: %w", err)
	}
	if dec.More() {
		return nil, errors.New("decode JSON: trailing data")
	}
	return v, nil
}
