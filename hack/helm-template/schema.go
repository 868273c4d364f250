package main

import (
	"encoding/json"
	"fmt"
	"math"
	"regexp"
	"sort"
	"strings"
)

// validateValues checks values against the chart's values.schema.json, as
// helm does before rendering. It implements the JSON Schema keywords the
// chart's schema uses: type, properties, additionalProperties, required,
// enum, items, minimum, maximum, minLength, pattern, anyOf; "$ref" and other
// keywords are rejected so that a schema never silently checks less.
func validateValues(rawSchema []byte, values map[string]interface{}) []string {
	var schema map[string]interface{}
	if err := json.Unmarshal(rawSchema, &schema); err != nil {
		return []string{"values.schema.json: " + err.Error()}
	}
	var errs []string
	check(schema, normalize(values), "", &errs)
	return errs
}

// normalize turns YAML-decoded values into the JSON model (float64 numbers,
// map[string]interface{} objects).
func normalize(v interface{}) interface{} {
	switch x := v.(type) {
	case map[string]interface{}:
		out := map[string]interface{}{}
		for k, e := range x {
			out[k] = normalize(e)
		}
		return out
	case []interface{}:
		out := make([]interface{}, len(x))
		for i, e := range x {
			out[i] = normalize(e)
		}
		return out
	case int:
		return float64(x)
	case int64:
		return float64(x)
	case uint64:
		return float64(x)
	}
	return v
}

var knownKeywords = map[string]bool{
	"type": true, "properties": true, "additionalProperties": true, "required": true,
	"enum": true, "items": true, "minimum": true, "maximum": true, "minLength": true,
	"pattern": true, "anyOf": true, "description": true, "title": true, "default": true,
	"$schema": true, "examples": true,
}

func typeOf(v interface{}) string {
	switch x := v.(type) {
	case nil:
		return "null"
	case bool:
		return "boolean"
	case float64:
		if x == math.Trunc(x) {
			return "integer"
		}
		return "number"
	case string:
		return "string"
	case []interface{}:
		return "array"
	case map[string]interface{}:
		return "object"
	}
	return fmt.Sprintf("%T", v)
}

func at(path string) string {
	if path == "" {
		return "(root)"
	}
	return path
}

func check(schema map[string]interface{}, v interface{}, path string, errs *[]string) {
	for k := range schema {
		if !knownKeywords[k] {
			*errs = append(*errs, fmt.Sprintf("%s: schema keyword %q is not supported by helm-template", at(path), k))
		}
	}
	if t, ok := schema["type"]; ok {
		var allowed []string
		switch x := t.(type) {
		case string:
			allowed = []string{x}
		case []interface{}:
			for _, e := range x {
				allowed = append(allowed, fmt.Sprint(e))
			}
		}
		got := typeOf(v)
		match := false
		for _, a := range allowed {
			if a == got || (a == "number" && got == "integer") {
				match = true
			}
		}
		if !match {
			*errs = append(*errs, fmt.Sprintf("%s: Invalid type. Expected: %s, given: %s", at(path), strings.Join(allowed, " or "), got))
			return
		}
	}
	if enum, ok := schema["enum"].([]interface{}); ok {
		found := false
		for _, e := range enum {
			if fmt.Sprint(e) == fmt.Sprint(v) && typeOf(e) == typeOf(v) {
				found = true
			}
		}
		if !found {
			var names []string
			for _, e := range enum {
				b, _ := json.Marshal(e)
				names = append(names, string(b))
			}
			*errs = append(*errs, fmt.Sprintf("%s: must be one of the following: %s", at(path), strings.Join(names, ", ")))
		}
	}
	if anyOf, ok := schema["anyOf"].([]interface{}); ok {
		matched := false
		for _, s := range anyOf {
			var sub []string
			if sm, ok := s.(map[string]interface{}); ok {
				check(sm, v, path, &sub)
			}
			if len(sub) == 0 {
				matched = true
				break
			}
		}
		if !matched {
			*errs = append(*errs, fmt.Sprintf("%s: must validate at least one schema (anyOf)", at(path)))
		}
	}
	switch x := v.(type) {
	case float64:
		if m, ok := schema["minimum"].(float64); ok && x < m {
			*errs = append(*errs, fmt.Sprintf("%s: must be greater than or equal to %v", at(path), m))
		}
		if m, ok := schema["maximum"].(float64); ok && x > m {
			*errs = append(*errs, fmt.Sprintf("%s: must be less than or equal to %v", at(path), m))
		}
	case string:
		if m, ok := schema["minLength"].(float64); ok && float64(len(x)) < m {
			*errs = append(*errs, fmt.Sprintf("%s: String length must be greater than or equal to %v", at(path), m))
		}
		if p, ok := schema["pattern"].(string); ok {
			re, err := regexp.Compile(p)
			if err != nil {
				*errs = append(*errs, fmt.Sprintf("%s: bad pattern %q: %v", at(path), p, err))
			} else if !re.MatchString(x) {
				*errs = append(*errs, fmt.Sprintf("%s: Does not match pattern '%s'", at(path), p))
			}
		}
	case []interface{}:
		if items, ok := schema["items"].(map[string]interface{}); ok {
			for i, e := range x {
				check(items, e, fmt.Sprintf("%s.%d", at(path), i), errs)
			}
		}
	case map[string]interface{}:
		props, _ := schema["properties"].(map[string]interface{})
		if req, ok := schema["required"].([]interface{}); ok {
			for _, r := range req {
				if _, has := x[fmt.Sprint(r)]; !has {
					*errs = append(*errs, fmt.Sprintf("%s: %v is required", at(path), r))
				}
			}
		}
		keys := make([]string, 0, len(x))
		for k := range x {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			child := k
			if path != "" {
				child = path + "." + k
			}
			if ps, ok := props[k].(map[string]interface{}); ok {
				check(ps, x[k], child, errs)
				continue
			}
			switch ap := schema["additionalProperties"].(type) {
			case bool:
				if !ap {
					*errs = append(*errs, fmt.Sprintf("%s: Additional property %s is not allowed", at(path), k))
				}
			case map[string]interface{}:
				check(ap, x[k], child, errs)
			}
		}
	}
}
