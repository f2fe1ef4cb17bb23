// Package config loads symbridge's configuration: a team's existing Symphony
// BDK config.yaml (which must work unchanged) plus symbridge's own sections
// (bridge, nats, http, log, runtime), in three layers: the YAML (or JSON)
// file, then SYMBRIDGE_* environment variables, then overrides from the
// command line. koanf decodes the merged layers into tagged structs (see
// [fileKeys]) whose tags also document every key ([Keys]). A small pre-pass
// does what is the BDK's: ${NAME} and ${NAME:-default} placeholders in the
// file, resolved from the environment given to [Load]; its deprecated flat
// spellings, renamed to the nested keys; the global server parts each
// component inherits; and the keys of its file that symbridge ignores.
//
// Environment variables are spelled [EnvPrefix] + the key path upper-cased,
// with "__" between path segments, e.g. SYMBRIDGE_NATS__URL; they are matched
// to the known keys case-insensitively (see [EnvName]). Lists are
// comma-separated there.
//
// [Load] fails on what it cannot parse (syntax, types, unknown keys in
// symbridge's sections or in the environment, unresolved placeholders in keys
// symbridge uses). Problems with values that parse, including key,
// certificate and trust-store files that are missing or unreadable, are
// reported by [Config.Validate], each naming its key, so that a caller can
// show a loaded configuration before refusing to run it. BDK keys symbridge
// does not use are listed in one entry of [Config.Warnings].
//
// The package never logs, never exits, and never puts a secret (private key,
// password, token) in an error or in [Config.String].
package config

import (
	"cmp"
	"errors"
	"fmt"
	"maps"
	"reflect"
	"slices"
	"strings"

	"github.com/go-viper/mapstructure/v2"
	"github.com/knadh/koanf/parsers/yaml"
	"github.com/knadh/koanf/providers/confmap"
	"github.com/knadh/koanf/providers/file"
	"github.com/knadh/koanf/v2"
)

// alternatives are key groups of which one is used: the highest layer
// (file < environment < overrides) that sets any of them wins as a whole, so
// SYMBRIDGE_BOT__PRIVATEKEY__CONTENT replaces a path in the file. Two set in
// the same layer is a problem, as in the BDK.
var alternatives = [][]string{
	{"bot.privateKey.path", "bot.privateKey.content", "bot.privateKeyPath", "bot.privateKeyContent"},
	{"bot.certificate.path", "bot.certificate.content", "bot.certificatePath", "bot.certificateContent"},
	{"ssl.trustStore.path", "ssl.trustStore.content", "ssl.trustStorePath"},
}

// Load reads the configuration file at path ("" = none), then the SYMBRIDGE_*
// variables of environ (pass os.Environ(); placeholders are resolved from it
// too), then overrides keyed by dotted key paths (from command-line flags;
// values may be strings or Go values). Call [Config.Validate] before use.
func Load(path string, environ []string, overrides map[string]any) (*Config, error) {
	fileLayer, unusedBDK, err := loadFile(path, envMap(environ))
	if err != nil {
		return nil, err
	}
	envLayer, envErr := loadEnv(environ)
	overLayer, overErr := loadOverrides(overrides)
	if err := errors.Join(envErr, overErr); err != nil {
		return nil, err
	}

	c := &Config{source: map[string]string{}}
	if slices.ContainsFunc(slices.Collect(maps.Keys(fileLayer)), func(k string) bool { return defByKey[k].Secret }) {
		c.warnPermissions("config file", path)
	}
	layers := []map[string]any{fileLayer, envLayer, overLayer}
	c.resolveAlternatives(layers)
	merged := map[string]any{}
	for _, d := range defs {
		if d.Default != "" {
			merged[d.Key] = d.Default
		}
	}
	var errs []error
	for _, l := range layers {
		for key, v := range l {
			d := defByKey[key]
			switch {
			case isUnset(d.typ, v): // SYMBRIDGE_X= for a number or list leaves the file's value
			case d.canon == key || l[d.canon] == nil:
				merged[d.canon], c.source[d.canon] = v, key
			default: // the nested spelling wins, but both must parse
				if _, err := decodeHook(reflect.ValueOf(v), reflect.New(d.typ).Elem()); err != nil {
					errs = append(errs, fmt.Errorf("%s: %w", key, err))
				}
			}
		}
	}
	inherit(merged, c.source)
	k := koanf.New(".")
	if err := k.Load(confmap.Provider(merged, "."), nil); err != nil {
		return nil, err
	}
	var f fileKeys
	var de *mapstructure.DecodeError
	if err := k.UnmarshalWithConf("", &f, koanf.UnmarshalConf{DecoderConfig: &mapstructure.DecoderConfig{
		DecodeHook: decodeHook, ErrorUnused: true, MatchName: func(a, b string) bool { return a == b },
	}}); errors.As(err, &de) { // the first; "key: must be ...", the key as written
		errs = append(errs, fmt.Errorf("%s: %w", cmp.Or(c.source[de.Name()], de.Name()), de.Unwrap()))
	} else if err != nil {
		errs = append(errs, err)
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}

	c.build(&f)
	if len(unusedBDK) > 0 {
		c.Warnings = append([]string{"ignoring BDK keys that do not concern symbridge: " + strings.Join(unusedBDK, ", ")}, c.Warnings...)
	}
	return c, nil
}

// isUnset tells whether a raw value of a key of type t means "not
// configured": absent, YAML null, an empty map, or (for every type but
// strings) a blank string.
func isUnset(t reflect.Type, v any) bool {
	switch x := v.(type) {
	case nil:
		return true
	case map[string]any:
		return len(x) == 0
	case string:
		return t != nil && t.Kind() != reflect.String && strings.TrimSpace(x) == ""
	}
	return false
}

// loadFile reads the file into a flat map of known keys, placeholders
// resolved. It returns the BDK keys symbridge does not use, sorted.
func loadFile(path string, envVars map[string]string) (map[string]any, []string, error) {
	out, k := map[string]any{}, koanf.New(".")
	if path == "" {
		return out, nil, nil
	}
	if err := k.Load(file.Provider(path), yaml.Parser()); err != nil {
		return nil, nil, fmt.Errorf("config file %s: %w", path, err)
	}
	var errs []error
	var unused []string
	for _, key := range k.Keys() {
		val, section := k.Get(key), strings.Split(key, ".")[0]
		isPrefix := func(d keyDef) bool { return strings.HasPrefix(d.Key, key+".") }
		switch d, known := defByKey[key]; {
		case !known && isUnset(nil, val) && slices.ContainsFunc(defs, isPrefix): // "pod:" with nothing under it
		case !known && symbridgeSections[section] && keyByLower[strings.ToLower(key)] != "":
			errs = append(errs, fmt.Errorf("%s: unknown key (did you mean %s?)", key, keyByLower[strings.ToLower(key)]))
		case !known && symbridgeSections[section]:
			errs = append(errs, fmt.Errorf("%s: unknown key", key))
		case !known:
			unused = append(unused, key)
		case isUnset(d.typ, val):
		default:
			var err error
			if out[key], err = expandValue(val, envVars); err != nil {
				errs = append(errs, fmt.Errorf("%s: %w", key, err))
			}
		}
	}
	if len(errs) > 0 {
		return nil, nil, fmt.Errorf("config file %s: %w", path, errors.Join(errs...))
	}
	return out, unused, nil
}

// loadEnv reads the SYMBRIDGE_* variables into a flat map of known keys.
// An unknown variable is an error: it is our namespace, and a typo would
// otherwise be silently ignored.
func loadEnv(environ []string) (map[string]any, error) {
	out, seen := map[string]any{}, map[string]string{}
	var errs []error
	for _, kv := range environ {
		name, val, _ := strings.Cut(kv, "=")
		path := strings.ReplaceAll(strings.ToLower(strings.TrimPrefix(name, EnvPrefix)), "__", ".")
		switch key, ok := keyByLower[path]; {
		case !strings.HasPrefix(name, EnvPrefix) || name == ConfigFileEnv:
		case !ok:
			err := fmt.Errorf("environment %s: unknown key %q", name, path)
			for _, d := range defs { // a mistaken "_" between segments: SYMBRIDGE_NATS_URL
				if d.Env != name && strings.ReplaceAll(d.Env, "__", "_") == name {
					err = fmt.Errorf("environment %s: unknown key (did you mean %s? path segments are separated by \"__\")", name, d.Env)
				}
			}
			errs = append(errs, err)
		case seen[key] != "":
			errs = append(errs, fmt.Errorf("environment %s and %s: both set %s", seen[key], name, key))
		default:
			seen[key], out[key] = name, val
		}
	}
	return out, errors.Join(errs...)
}

// loadOverrides canonicalises the override keys (any case) and rejects
// unknown ones.
func loadOverrides(overrides map[string]any) (map[string]any, error) {
	out := map[string]any{}
	var errs []error
	for _, key := range slices.Sorted(maps.Keys(overrides)) {
		if c, ok := keyByLower[strings.ToLower(key)]; ok {
			out[c] = overrides[key]
		} else {
			errs = append(errs, fmt.Errorf("override %s: unknown key", key))
		}
	}
	return out, errors.Join(errs...)
}

// present tells whether a layer gives a value: a blank string is none.
func present(v any) bool {
	s, ok := v.(string)
	return v != nil && (!ok || strings.TrimSpace(s) != "")
}

// resolveAlternatives keeps, for each group of alternative keys, only those
// the highest layer that sets any of them sets.
func (c *Config) resolveAlternatives(layers []map[string]any) {
	for _, group := range alternatives {
		win := -1
		for i, l := range layers {
			if slices.ContainsFunc(group, func(key string) bool { return present(l[key]) }) {
				win = i
			}
		}
		var set []string
		for _, key := range group {
			if win >= 0 && present(layers[win][key]) {
				set = append(set, key)
				continue
			}
			for _, l := range layers {
				delete(l, key)
			}
		}
		if len(set) > 1 {
			c.problems = append(c.problems, &keyError{strings.Join(set, ", "), errors.New("set only one of them")})
		}
	}
}

// inherit gives each Symphony component the global scheme, host, port and
// context, and the agent the global timeouts, that it does not set itself,
// as in the BDK; source then names the global key, so that a problem is
// reported under the key that was written. A blank own context is none.
func inherit(m map[string]any, source map[string]string) {
	pairs := [][2]string{{"agent.connectionTimeout", "connectionTimeout"}, {"agent.readTimeout", "readTimeout"}}
	for _, comp := range []string{"pod", "agent", "keyManager", "sessionAuth"} {
		for _, part := range []string{"scheme", "host", "port", "context"} {
			pairs = append(pairs, [2]string{comp + "." + part, part})
		}
	}
	for _, p := range pairs {
		own, global := p[0], p[1]
		if !present(m[own]) && (global != "context" || m[own] == nil) && m[global] != nil {
			m[own], source[own] = m[global], cmp.Or(source[global], global)
		}
	}
}
