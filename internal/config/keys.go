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

// flatSpellings are the BDK's deprecated spellings of nested keys. Load
// renames them; messages name the key as it was written.
var flatSpellings = map[string]string{
	"bot.privateKey.path": "bot.privateKeyPath", "bot.privateKey.content": "bot.privateKeyContent",
	"bot.certificate.path": "bot.certificatePath", "bot.certificate.content": "bot.certificateContent",
	"bot.certificate.password": "bot.certificatePassword",
	"ssl.trustStore.path":      "ssl.trustStorePath", "ssl.trustStore.password": "ssl.trustStorePassword",
}

type keyDef struct {
	KeyDoc
	typ   reflect.Type
	canon string // the key a flat spelling stands for; else Key
}

var (
	defs       = walkKeys(reflect.TypeFor[fileKeys](), "", "", nil)
	defByKey   = map[string]*keyDef{}
	keyByLower = map[string]string{} // lower-cased key -> key
)

func init() {
	for i, d := range defs {
		defByKey[d.Key], keyByLower[strings.ToLower(d.Key)] = &defs[i], d.Key
	}
}

// walkKeys lists the keys of a struct type in field order. A field tagged
// `of:"..."` names what the descriptions below it call {of}.
func walkKeys(t reflect.Type, prefix, of string, out []keyDef) []keyDef {
	for i := range t.NumField() {
		f := t.Field(i)
		name, opt, _ := strings.Cut(f.Tag.Get("koanf"), ",")
		o := of
		if tag, ok := f.Tag.Lookup("of"); ok {
			o = strings.ReplaceAll(tag, "{of}", of)
		}
		switch key := prefix + name; {
		case name == "-":
		case opt == "squash":
			out = walkKeys(f.Type, prefix, o, out)
		case f.Type.Kind() == reflect.Struct:
			out = walkKeys(f.Type, key+".", o, out)
		default:
			out = append(out, newDef(key, key, f.Type, f.Tag.Get("default"), strings.ReplaceAll(f.Tag.Get("desc"), "{of}", of)))
			if flat := flatSpellings[key]; flat != "" {
				out = append(out, newDef(flat, key, f.Type, "", "deprecated BDK spelling of "+key))
			}
		}
	}
	return out
}

func newDef(key, canon string, t reflect.Type, def, desc string) keyDef {
	typ := map[reflect.Type]string{durationType: "duration", millisType: "milliseconds"}[t]
	if typ == "" {
		typ = map[reflect.Kind]string{reflect.Int: "int", reflect.Int32: "int", reflect.Int64: "int",
			reflect.Bool: "bool", reflect.Float64: "float", reflect.Slice: "list", reflect.String: "string"}[t.Kind()]
	}
	return keyDef{typ: t, canon: canon, KeyDoc: KeyDoc{Key: key, Env: EnvName(key), Type: typ,
		Default: def, Description: desc, Secret: t == secretType}}
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
