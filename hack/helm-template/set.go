package main

import (
	"fmt"
	"strconv"
	"strings"
)

// applySet applies one --set or --set-string argument: comma-separated
// path=value pairs, paths with dots and list indexes (a.b[0].c), "\." and "\,"
// escapes, {a,b} lists; values typed as helm types them (int64, bool, null)
// unless asString.
func applySet(values map[string]interface{}, arg string, asString bool) error {
	for _, pair := range splitUnescaped(arg, ',', true) {
		eq := indexUnescaped(pair, '=')
		if eq < 0 {
			return fmt.Errorf("key %q has no value", pair)
		}
		key, raw := pair[:eq], pair[eq+1:]
		var value interface{}
		if strings.HasPrefix(raw, "{") && strings.HasSuffix(raw, "}") {
			var list []interface{}
			inner := raw[1 : len(raw)-1]
			if inner != "" {
				for _, item := range splitUnescaped(inner, ',', false) {
					list = append(list, typed(unescape(item), asString))
				}
			}
			value = list
		} else {
			value = typed(unescape(raw), asString)
		}
		if err := setPath(values, splitUnescaped(key, '.', false), value); err != nil {
			return err
		}
	}
	return nil
}

func typed(s string, asString bool) interface{} {
	if asString {
		return s
	}
	switch s {
	case "true":
		return true
	case "false":
		return false
	case "null":
		return nil
	}
	if len(s) > 1 && s[0] == '0' {
		return s // helm keeps leading-zero numbers as strings
	}
	if i, err := strconv.ParseInt(s, 10, 64); err == nil {
		return i
	}
	return s
}

func setPath(m map[string]interface{}, keys []string, value interface{}) error {
	key := unescape(keys[0])
	index := -1
	if open := strings.IndexByte(key, '['); open >= 0 && strings.HasSuffix(key, "]") {
		i, err := strconv.Atoi(key[open+1 : len(key)-1])
		if err != nil || i < 0 {
			return fmt.Errorf("bad list index in %q", key)
		}
		key, index = key[:open], i
	}
	if index < 0 {
		if len(keys) == 1 {
			if value == nil {
				delete(m, key)
			} else {
				m[key] = value
			}
			return nil
		}
		child, ok := m[key].(map[string]interface{})
		if !ok {
			child = map[string]interface{}{}
			m[key] = child
		}
		return setPath(child, keys[1:], value)
	}
	list, _ := m[key].([]interface{})
	for len(list) <= index {
		list = append(list, nil)
	}
	m[key] = list
	if len(keys) == 1 {
		list[index] = value
		return nil
	}
	child, ok := list[index].(map[string]interface{})
	if !ok {
		child = map[string]interface{}{}
		list[index] = child
	}
	return setPath(child, keys[1:], value)
}

// splitUnescaped splits on sep outside backslash escapes (and, when
// braces is set, outside {...} lists).
func splitUnescaped(s string, sep byte, braces bool) []string {
	var parts []string
	depth, start := 0, 0
	for i := 0; i < len(s); i++ {
		switch {
		case s[i] == '\\':
			i++
		case braces && s[i] == '{':
			depth++
		case braces && s[i] == '}':
			depth--
		case s[i] == sep && depth == 0:
			parts = append(parts, s[start:i])
			start = i + 1
		}
	}
	return append(parts, s[start:])
}

func indexUnescaped(s string, c byte) int {
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' {
			i++
			continue
		}
		if s[i] == c {
			return i
		}
	}
	return -1
}

func unescape(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+1 < len(s) {
			i++
		}
		b.WriteByte(s[i])
	}
	return b.String()
}
