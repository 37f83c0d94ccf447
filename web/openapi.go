package web

import (
	"net/http"
	"reflect"
	"regexp"
	"strings"
	"time"
)

// openAPI serves the OpenAPI 3 document generated from the declared routes,
// so the document cannot drift from what the router serves.
func (s *Server) openAPI(w http.ResponseWriter, r *http.Request) error {
	writeJSON(w, http.StatusOK, s.openAPIDocument())
	return nil
}

var pathParam = regexp.MustCompile(`\{([a-zA-Z_]+)(:[^}]*)?\}`)

func (s *Server) openAPIDocument() map[string]any {
	paths := map[string]map[string]any{}
	schemas := map[string]any{}
	for _, e := range s.api.endpoints {
		path := "/api/v1" + pathParam.ReplaceAllString(e.Path, "{$1}")
		op := map[string]any{
			"summary":     e.Summary,
			"operationId": strings.ToLower(e.Method) + strings.NewReplacer("/", "_", "{", "", "}", "").Replace(e.Path),
			"tags":        []string{strings.Split(strings.TrimPrefix(e.Path, "/"), "/")[0]},
		}
		var params []map[string]any
		for _, m := range pathParam.FindAllStringSubmatch(e.Path, -1) {
			params = append(params, map[string]any{"name": m[1], "in": "path", "required": true, "schema": map[string]any{"type": "string"}})
		}
		for _, q := range e.Doc.Query {
			params = append(params, map[string]any{"name": q, "in": "query", "schema": map[string]any{"type": "string"}})
		}
		if e.Doc.Idempotent {
			params = append(params, map[string]any{"name": "Idempotency-Key", "in": "header", "description": "Replays the first answer for a retried create", "schema": map[string]any{"type": "string", "maxLength": 200}})
		}
		if params != nil {
			op["parameters"] = params
		}
		if e.Doc.Body != nil {
			ct := "application/json"
			if e.Doc.BodyType != "" {
				ct = e.Doc.BodyType
			}
			op["requestBody"] = map[string]any{"required": true, "content": map[string]any{ct: map[string]any{"schema": schemaOf(reflect.TypeOf(e.Doc.Body), schemas)}}}
		}
		status := e.Doc.Status
		if status == 0 {
			status = 200
		}
		resp := map[string]any{"description": http.StatusText(status)}
		if e.Doc.Response != nil {
			resp["content"] = map[string]any{"application/json": map[string]any{"schema": schemaOf(reflect.TypeOf(e.Doc.Response), schemas)}}
		}
		responses := map[string]any{itoa(int64(status)): resp, "default": map[string]any{"description": "Error", "content": map[string]any{"application/json": map[string]any{"schema": map[string]any{"$ref": "#/components/schemas/Error"}}}}}
		op["responses"] = responses
		switch {
		case e.Role != "":
			op["security"] = []map[string][]string{{"session": {}}, {"token": {}}}
			op["x-min-role"] = e.Role
		case e.Doc.Auth != "":
			op["security"] = []map[string][]string{}
			op["x-auth"] = e.Doc.Auth
		default:
			op["security"] = []map[string][]string{}
		}
		if paths[path] == nil {
			paths[path] = map[string]any{}
		}
		paths[path][strings.ToLower(e.Method)] = op
	}
	schemas["Error"] = map[string]any{"type": "object", "properties": map[string]any{"error": map[string]any{"type": "object",
		"properties": map[string]any{"kind": map[string]any{"type": "string"}, "message": map[string]any{"type": "string"}, "field": map[string]any{"type": "string"}}}}}
	return map[string]any{
		"openapi": "3.0.3",
		"info":    map[string]any{"title": "AgentDesk API", "version": "1"},
		"servers": []map[string]string{{"url": "/"}},
		"paths":   paths,
		"components": map[string]any{
			"schemas": schemas,
			"securitySchemes": map[string]any{
				"session": map[string]any{"type": "apiKey", "in": "cookie", "name": SessionCookie},
				"token":   map[string]any{"type": "http", "scheme": "bearer"},
			},
		},
	}
}

var timeType = reflect.TypeOf(time.Time{})

// schemaOf describes t as a JSON schema, registering named structs in
// schemas and referring to them.
func schemaOf(t reflect.Type, schemas map[string]any) map[string]any {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if t == timeType {
		return map[string]any{"type": "string", "format": "date-time"}
	}
	if d, ok := reflect.Zero(t).Interface().(interface{ jsonSchema() map[string]any }); ok {
		return d.jsonSchema() // types with their own JSON form (nullableID)
	}
	switch t.Kind() {
	case reflect.Bool:
		return map[string]any{"type": "boolean"}
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64, reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return map[string]any{"type": "integer"}
	case reflect.Float32, reflect.Float64:
		return map[string]any{"type": "number"}
	case reflect.String:
		return map[string]any{"type": "string"}
	case reflect.Slice, reflect.Array:
		if t.Elem().Kind() == reflect.Uint8 {
			return map[string]any{"type": "string"}
		}
		return map[string]any{"type": "array", "items": schemaOf(t.Elem(), schemas)}
	case reflect.Map:
		return map[string]any{"type": "object", "additionalProperties": schemaOf(t.Elem(), schemas)}
	case reflect.Interface:
		return map[string]any{}
	case reflect.Struct:
		name := schemaName(t)
		if _, ok := schemas[name]; !ok {
			schemas[name] = map[string]any{} // break recursion
			props := map[string]any{}
			addFields(t, props, schemas)
			schemas[name] = map[string]any{"type": "object", "properties": props}
		}
		return map[string]any{"$ref": "#/components/schemas/" + name}
	}
	return map[string]any{}
}

func addFields(t reflect.Type, props map[string]any, schemas map[string]any) {
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		tag := f.Tag.Get("json")
		if tag == "-" || (!f.IsExported() && !f.Anonymous) {
			continue
		}
		name, _, _ := strings.Cut(tag, ",")
		if f.Anonymous && name == "" {
			ft := f.Type
			for ft.Kind() == reflect.Pointer {
				ft = ft.Elem()
			}
			if ft.Kind() == reflect.Struct {
				addFields(ft, props, schemas)
				continue
			}
		}
		if name == "" {
			name = f.Name
		}
		props[name] = schemaOf(f.Type, schemas)
	}
}

func schemaName(t reflect.Type) string {
	name := t.Name()
	if i := strings.IndexByte(name, '['); i >= 0 { // generic List[T]
		inner := name[i+1 : len(name)-1]
		inner = inner[strings.LastIndexAny(inner, "./")+1:]
		name = name[:i] + "Of" + strings.ToUpper(inner[:1]) + inner[1:]
	}
	pkg := t.PkgPath()
	if strings.HasSuffix(pkg, "/postgres") && name != "" {
		return name
	}
	return name
}
