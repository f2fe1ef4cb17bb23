package config

import (
	"reflect"
	"strings"
	"time"

	"github.com/symbridge/symbridge/internal/redact"
)

// EnvPrefix starts every environment variable symbridge reads.
const EnvPrefix = "SYMBRIDGE_"

// ConfigFileEnv is reserved for the command line to name the configuration
// file; [Load] ignores it instead of rejecting it as an unknown key.
const ConfigFileEnv = EnvPrefix + "CONFIG"

// KeyDoc documents one configuration key. The struct tags of [fileKeys]
// and the section types are the single source: koanf (the key), default
// (parsed by [Load] like a value from the file), desc, and the field's type.
type KeyDoc struct {
	Key         string // dotted koanf path, e.g. "nats.stream.maxAge"
	Env         string // e.g. "SYMBRIDGE_NATS__STREAM__MAXAGE"
	Type        string // string, int, bool, float, duration, milliseconds, list
	Default     string // as it would be written in the file; "" = none or derived (see Description)
	Description string
	Secret      bool // never printed, never echoed in errors
}

// millis is a BDK duration: an integer number of milliseconds.
type millis time.Duration

var (
	secretType   = reflect.TypeFor[redact.Secret]()
	durationType = reflect.TypeFor[time.Duration]()
	millisType   = reflect.TypeFor[millis]()
)

type keyDef struct {
	KeyDoc
	typ reflect.Type
}

var (
	defs       = walkKeys(reflect.TypeFor[fileKeys](), "", "", nil)
	defByKey   = map[string]*keyDef{}
	keyByLower = map[string]string{} // lower-cased path -> canonical path
	prefixes   = map[string]bool{}   // every proper prefix of a known key ("bot", "bot.privateKey")
)

func init() {
	for i := range defs {
		k := defs[i].Key
		defByKey[k] = &defs[i]
		keyByLower[strings.ToLower(k)] = k
		for j := range k {
			if k[j] == '.' {
				prefixes[k[:j]] = true
			}
		}
	}
}

// walkKeys lists the keys of a struct type in field order. A field tagged
// `of:"..."` names what the descriptions below it call {of}.
func walkKeys(t reflect.Type, prefix, of string, out []keyDef) []keyDef {
	for i := range t.NumField() {
		f := t.Field(i)
		name, opt, _ := strings.Cut(f.Tag.Get("koanf"), ",")
		if name == "-" {
			continue
		}
		o := of
		if tag, ok := f.Tag.Lookup("of"); ok {
			o = strings.ReplaceAll(tag, "{of}", of)
		}
		switch {
		case opt == "squash":
			out = walkKeys(f.Type, prefix, o, out)
		case f.Type.Kind() == reflect.Struct:
			out = walkKeys(f.Type, prefix+name+".", o, out)
		default:
			key := prefix + name
			out = append(out, keyDef{typ: f.Type, KeyDoc: KeyDoc{
				Key: key, Env: EnvName(key), Type: typeName(f.Type), Default: f.Tag.Get("default"),
				Description: strings.ReplaceAll(f.Tag.Get("desc"), "{of}", of), Secret: f.Type == secretType,
			}})
		}
	}
	return out
}

func typeName(t reflect.Type) string {
	switch {
	case t == durationType:
		return "duration"
	case t == millisType:
		return "milliseconds"
	}
	switch t.Kind() {
	case reflect.Int, reflect.Int32, reflect.Int64:
		return "int"
	case reflect.Bool:
		return "bool"
	case reflect.Float64:
		return "float"
	case reflect.Slice:
		return "list"
	}
	return "string"
}

// symbridgeSections are symbridge's own: an unknown key there is an error.
// Every other top-level key belongs to the BDK's file and is only warned about.
var symbridgeSections = map[string]bool{"bridge": true, "nats": true, "http": true, "log": true, "runtime": true}

// EnvName is the environment spelling of a key: the prefix, then the path
// upper-cased with each '.' written "__" ("nats.stream.maxAge" ->
// "SYMBRIDGE_NATS__STREAM__MAXAGE"). camelCase boundaries are not marked, so
// the mapping back is made by matching the known keys case-insensitively:
// unambiguous because no two keys differ only in case.
func EnvName(key string) string {
	return EnvPrefix + strings.ToUpper(strings.ReplaceAll(key, ".", "__"))
}

// Keys returns the documentation of every key symbridge reads, in a stable
// order, for the command line to print and the README to document.
func Keys() []KeyDoc {
	out := make([]KeyDoc, len(defs))
	for i, d := range defs {
		out[i] = d.KeyDoc
	}
	return out
}

// canonicalKey maps a key spelled in any case to its canonical spelling.
func canonicalKey(k string) (string, bool) {
	c, ok := keyByLower[strings.ToLower(k)]
	return c, ok
}

func section(key string) string {
	s, _, _ := strings.Cut(key, ".")
	return s
}

// isUnset tells whether a raw value means "not configured": absent, YAML
// null, an empty map, or (for every type but strings) a blank string.
func isUnset(key string, v any) bool {
	switch x := v.(type) {
	case nil:
		return true
	case map[string]any:
		return len(x) == 0
	case string:
		return defByKey[key].typ.Kind() != reflect.String && strings.TrimSpace(x) == ""
	}
	return false
}
