package config

import (
	"errors"
	"fmt"
	"math"
	"os"
	"reflect"
	"strconv"
	"strings"
	"time"
)

// errUnresolved marks a ${VAR} placeholder whose variable is not set and that
// has no default.
var errUnresolved = errors.New("is not set and the placeholder has no default")

// expandPlaceholders resolves the BDK's placeholders in a string value of the
// file: ${NAME} and ${NAME:-default} from the environment, plus the Java
// system properties BDK files commonly use (${user.home}, ${user.dir},
// ${user.name}). "$${" escapes a literal "${", as Apache StringSubstitutor
// (which the BDK uses) does. The BDK leaves an unresolved placeholder as it
// is; symbridge does the same but reports it, so that a key it uses never
// silently holds "${BOT_USER}". Nested placeholders are not supported.
func expandPlaceholders(s string, env map[string]string) (string, error) {
	if !strings.Contains(s, "${") {
		return s, nil
	}
	var b strings.Builder
	var firstErr error
	for {
		i := strings.Index(s, "${")
		if i < 0 {
			b.WriteString(s)
			break
		}
		if i > 0 && s[i-1] == '$' { // "$${" -> literal "${"
			b.WriteString(s[:i-1])
			b.WriteString("${")
			s = s[i+2:]
			continue
		}
		end := strings.IndexByte(s[i+2:], '}')
		if end < 0 {
			b.WriteString(s)
			break
		}
		b.WriteString(s[:i])
		inner := s[i+2 : i+2+end]
		name, def, hasDef := strings.Cut(inner, ":-")
		if v, ok := lookupPlaceholder(name, env); ok {
			b.WriteString(v)
		} else if hasDef {
			b.WriteString(def)
		} else {
			b.WriteString(s[i : i+3+end])
			if firstErr == nil {
				firstErr = fmt.Errorf("placeholder ${%s}: variable %s %w", name, name, errUnresolved)
			}
		}
		s = s[i+3+end:]
	}
	return b.String(), firstErr
}

func lookupPlaceholder(name string, env map[string]string) (string, bool) {
	if v, ok := env[name]; ok {
		return v, true
	}
	switch name {
	case "user.home":
		v, ok := env["HOME"]
		if !ok {
			v, ok = env["USERPROFILE"]
		}
		return v, ok
	case "user.name":
		v, ok := env["USER"]
		if !ok {
			v, ok = env["USERNAME"]
		}
		return v, ok
	case "user.dir":
		wd, err := os.Getwd()
		return wd, err == nil
	}
	return "", false
}

func envMap(environ []string) map[string]string {
	m := make(map[string]string, len(environ))
	for _, kv := range environ {
		if k, v, ok := strings.Cut(kv, "="); ok {
			m[k] = v
		}
	}
	return m
}

// decodeHook converts a raw value (typed YAML, a string from the
// environment or a flag, or a Go value from an override) to the type of the
// field mapstructure fills; the error says what the key must be, echoing the
// value unless the field is a secret.
func decodeHook(from, to reflect.Value) (any, error) {
	v := from.Interface()
	fail := func(want string) (any, error) {
		if to.Type() == secretType {
			return nil, fmt.Errorf("must be %s", want)
		}
		return nil, fmt.Errorf("must be %s, got %q", want, fmt.Sprint(v))
	}
	switch to.Type() {
	case durationType:
		const want = `a duration with a unit, like "5s" or "35m"`
		switch x := v.(type) {
		case string:
			d, err := time.ParseDuration(strings.TrimSpace(x))
			if err != nil {
				return fail(want)
			}
			return d, nil
		case time.Duration:
			return x, nil
		case int, int64:
			if x == 0 || x == int64(0) {
				return time.Duration(0), nil
			}
		}
		return fail(want)
	case millisType:
		n, err := toInt64(v)
		switch {
		case err != nil:
			return fail("an integer")
		case n < 0 || n > math.MaxInt64/int64(time.Millisecond):
			return fail("a non-negative number of milliseconds")
		}
		return time.Duration(n) * time.Millisecond, nil
	}
	switch to.Kind() {
	case reflect.String:
		switch v.(type) {
		case string:
			return v, nil
		case int, int64, float64, bool:
			// YAML turns `port: 8443`-like values into numbers; a string key
			// given a scalar is still meant as text (e.g. a numeric username).
			return fmt.Sprint(v), nil
		}
		return fail("a string")
	case reflect.Bool:
		switch x := v.(type) {
		case bool:
			return x, nil
		case string:
			if b, err := strconv.ParseBool(strings.TrimSpace(x)); err == nil {
				return b, nil
			}
		}
		return fail("true or false")
	case reflect.Int, reflect.Int32, reflect.Int64:
		n, err := toInt64(v)
		switch {
		case err != nil:
			return fail("an integer")
		case to.Kind() != reflect.Int64 && (n < math.MinInt32 || n > math.MaxInt32):
			return fail("an integer in 32-bit range")
		}
		return n, nil
	case reflect.Float64:
		if n, err := toInt64(v); err == nil && !isString(v) {
			return float64(n), nil
		}
		switch x := v.(type) {
		case float64:
			return x, nil
		case string:
			if f, err := strconv.ParseFloat(strings.TrimSpace(x), 64); err == nil && !math.IsNaN(f) && !math.IsInf(f, 0) {
				return f, nil
			}
		}
		return fail("a number")
	case reflect.Slice:
		list, want := toList(v)
		if want != "" {
			return fail(want)
		}
		return list, nil
	}
	return v, nil // a section: mapstructure walks it
}

func isString(v any) bool {
	_, ok := v.(string)
	return ok
}

func toInt64(v any) (int64, error) {
	switch x := v.(type) {
	case int:
		return int64(x), nil
	case int64:
		return x, nil
	case uint64:
		if x <= math.MaxInt64 {
			return int64(x), nil
		}
	case float64:
		if x == math.Trunc(x) && x >= math.MinInt64 && x < math.MaxInt64 {
			return int64(x), nil
		}
	case string:
		return strconv.ParseInt(strings.TrimSpace(x), 10, 64)
	}
	return 0, errors.New("not an integer")
}

// toList accepts a YAML list of scalars or a comma-separated string (the
// environment's spelling); blanks are dropped. want is what v should have
// been, "" when it is a list.
func toList(v any) (list []string, want string) {
	var items []string
	switch x := v.(type) {
	case string:
		items = strings.Split(x, ",")
	case []string:
		items = x
	case []any:
		for _, it := range x {
			switch it.(type) {
			case string, int, int64, float64, bool:
				items = append(items, fmt.Sprint(it))
			default:
				return nil, "a list of strings"
			}
		}
	default:
		return nil, "a list of strings or a comma-separated string"
	}
	out := make([]string, 0, len(items))
	for _, it := range items {
		if it = strings.TrimSpace(it); it != "" {
			out = append(out, it)
		}
	}
	return out, ""
}
