package httphost

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"iter"
	"maps"
	"mime"
	"net/http"
	"net/url"
	"slices"
	"sort"
	"strconv"
	"strings"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/getkin/kin-openapi/routers"
	"github.com/go-json-experiment/json/jsontext"

	"github.com/gpuaas/gpuaas/core/fault"
	"github.com/gpuaas/gpuaas/core/text"
)

// The contract is the validator: every request is checked against
// doc/api/openapi.yaml before its handler runs, by kin-openapi's
// openapi3filter (parameters, required fields, types, enums, formats,
// lengths, additionalProperties: false — which also makes field names
// case-exact, since the decoded object's keys are compared as written).
// Two things JSON Schema cannot say are checked around it: the body's JSON
// syntax (duplicate member names and invalid UTF-8 are refused, by
// go-json-experiment's jsontext, the encoding/json/v2 prototype), and the
// platform's text policy (core/text) on every string of every parameter
// and body. Failures are 400 with the usual error body naming the field.

// Contract extensions the validator reads.
const (
	// extRawBody on an operation: the handler verifies the raw body itself
	// (a signed webhook); the host neither parses nor validates it.
	extRawBody = "x-raw-body"
	// extStreamBody on an operation: the body is a file streamed to the
	// handler (any media type, not bounded by BodyLimit, never read here).
	extStreamBody = "x-stream-body"
	// extIdempotency false on an operation: X-Idempotency-Key is ignored
	// (a response holding credentials must never be stored for replay).
	// "use-case": the use case requires the key and dedupes on it itself,
	// resuming a retried request (a checkout, a refund request: a provider
	// call after the commit may fail and be retried); the host stores and
	// replays responses but does not hold a key back because the request's
	// transaction committed (idempotencyByUseCase).
	extIdempotency = "x-idempotency"
	// extText on a string schema: "opaque" exempts it from the single-line
	// rules (controls allowed; NUL and invalid UTF-8 still refused).
	extText = "x-text"
)

// contract is the loaded document the validator uses.
type contract struct {
	// spec is the document as the validator sees it: a shallow copy that
	// declares OpenAPI 3.0.3. kin-openapi validates 3.1 documents through a
	// JSON Schema 2020-12 library that recompiles the schema on every call
	// and reports errors as strings (some quoting the value); its own
	// validator returns structured errors with a JSON pointer and never the
	// value. The contract keeps to constructs both read alike (README).
	spec *openapi3.T
	opts openapi3.SchemaValidationOption
}

func newContract(spec *openapi3.T) *contract {
	view := *spec
	view.OpenAPI = "3.0.3"
	return &contract{spec: &view, opts: openapi3.WithStringFormatValidators(map[string]openapi3.StringFormatValidator{
		"uri": openapi3.NewCallbackValidator(func(s string) error {
			u, err := url.Parse(s)
			if err != nil || u.Scheme == "" || u.Host == "" {
				return errors.New("not an absolute URI")
			}
			return nil
		}),
	})}
}

// validate checks the request against its operation in the contract.
func (s *Server) validate(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		st := stateOf(r.Context())
		if st.route == nil || st.route.op == nil {
			next.ServeHTTP(w, r)
			return
		}
		if err := s.checkRequest(r, st); err != nil {
			s.fail(w, r, err)
			return
		}
		next.ServeHTTP(w, r)
	})
}

func (s *Server) checkRequest(r *http.Request, st *reqState) error {
	rt := st.route
	pathParams := make(map[string]string, len(st.urlParams.Keys))
	for i, k := range st.urlParams.Keys {
		v := st.urlParams.Values[i]
		if r.URL.RawPath != "" { // the router matched the escaped path
			u, err := url.PathUnescape(v)
			if err != nil {
				return fault.Invalid(k, "invalid value for "+k)
			}
			v = u
		}
		pathParams[k] = v
	}
	var query url.Values // parsed once for both checks
	if r.URL.RawQuery != "" {
		query = r.URL.Query()
	}
	if err := checkQueryNames(query, rt); err != nil {
		return err
	}
	if err := checkParamText(r, query, rt, pathParams); err != nil {
		return err
	}

	fr := new(http.Request)
	*fr = *r
	fr.Body = http.NoBody
	opts := &openapi3filter.Options{AuthenticationFunc: openapi3filter.NoopAuthenticationFunc,
		SkipSettingDefaults: true, SchemaValidationOptions: []openapi3.SchemaValidationOption{s.contract.opts}}
	var body any
	switch {
	case rt.op.RequestBody == nil || rt.rawBody:
		opts.ExcludeRequestBody = true
	default:
		data, err := s.readBody(r)
		if err != nil {
			return err
		}
		// The handler reads the same bytes again.
		r.Body = io.NopCloser(bytes.NewReader(data))
		if len(bytes.TrimSpace(data)) > 0 {
			if err := checkJSONSyntax(r, data); err != nil {
				return err
			}
			fr.Body = io.NopCloser(bytes.NewReader(data))
			fr.ContentLength = int64(len(data))
			fr.Header = r.Header.Clone()
			fr.Header.Set("Content-Type", "application/json") // parameters were checked by checkJSONSyntax
			if body, err = decodeAny(data); err != nil {
				return err
			}
		} else if rt.op.RequestBody.Value.Required {
			return fault.Invalid("body", "a JSON request body is required")
		}
	}
	in := &openapi3filter.RequestValidationInput{Request: fr, PathParams: pathParams, Options: opts,
		Route: &routers.Route{Spec: s.contract.spec, Path: rt.Pattern, PathItem: rt.item, Method: rt.Method, Operation: rt.op}}
	if err := openapi3filter.ValidateRequest(r.Context(), in); err != nil {
		return contractFault(err)
	}
	if body != nil {
		return walkText(bodySchema(rt.op), body, "")
	}
	return nil
}

// checkJSONSyntax requires the JSON media type and a single JSON value with
// no duplicate member names and valid UTF-8 (escaped surrogates included).
// encoding/json would keep the last duplicate and turn invalid UTF-8 into
// U+FFFD silently.
func checkJSONSyntax(r *http.Request, data []byte) error {
	if mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type")); err != nil || mt != "application/json" {
		return &fault.Error{Kind: fault.KindInvalid, Code: fault.CodeUnsupportedMedia,
			Message: "Content-Type must be application/json", Field: "Content-Type"}
	}
	dec := jsontext.NewDecoder(bytes.NewReader(data))
	if _, err := dec.ReadValue(); err != nil {
		var se *jsontext.SyntacticError
		if errors.As(err, &se) {
			field := pointerField(se.JSONPointer.Tokens())
			switch {
			case errors.Is(se.Err, jsontext.ErrDuplicateName):
				return fault.Invalid(field, "duplicate field "+field)
			case strings.Contains(se.Err.Error(), "UTF-8"):
				if field == "" {
					field = "body"
				}
				return fault.Invalid(field, field+" must be valid UTF-8")
			}
			return fault.Invalid("body", fmt.Sprintf("malformed JSON at byte %d", se.ByteOffset))
		}
		return fault.Invalid("body", "malformed JSON")
	}
	if dec.PeekKind() != 0 {
		return fault.Invalid("body", "unexpected data after the JSON value")
	}
	return nil
}

// decodeAny decodes a syntactically checked body for the text walk.
func decodeAny(data []byte) (any, error) {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return nil, fault.Invalid("body", "malformed JSON")
	}
	return v, nil
}

// pointerField names a JSON pointer as the error's field: a.b, items[2].
func pointerField(tokens iter.Seq[string]) string { return joinField("", slices.Collect(tokens)) }

// contractFault turns an openapi3filter error into a validation fault that
// names the field and never quotes the value.
func contractFault(err error) error {
	var re *openapi3filter.RequestError
	if !errors.As(err, &re) {
		return fault.Invalid("", "the request does not match the API contract").Wrap(err)
	}
	field := ""
	if re.Parameter != nil {
		field = re.Parameter.Name
	}
	var se *openapi3.SchemaError
	if errors.As(re.Err, &se) {
		ptr := se.JSONPointer()
		if field == "" || len(ptr) > 0 {
			field = joinField(field, ptr)
		}
		return schemaFault(field, se)
	}
	if field == "" {
		field = "body"
	}
	switch {
	case errors.Is(re.Err, openapi3filter.ErrInvalidRequired):
		return fault.Invalid(field, field+" is required")
	case errors.Is(re.Err, openapi3filter.ErrInvalidEmptyValue):
		return fault.Invalid(field, field+" must not be empty")
	}
	return fault.Invalid(field, "invalid value for "+field)
}

// joinField appends pointer tokens to a field name: a.b, items[2].
func joinField(prefix string, ptr []string) string {
	var b strings.Builder
	b.WriteString(prefix)
	for _, tok := range ptr {
		if _, err := strconv.Atoi(tok); err == nil && b.Len() > 0 {
			b.WriteString("[" + tok + "]")
			continue
		}
		if b.Len() > 0 {
			b.WriteByte('.')
		}
		b.WriteString(tok)
	}
	return b.String()
}

// schemaFault writes the message for one failed schema keyword.
func schemaFault(field string, se *openapi3.SchemaError) error {
	sc := se.Schema
	obj := field // the object holding an unknown member ("" for the body)
	if field == "" {
		field = "body"
	}
	name := field
	msg := name + " is invalid"
	switch se.SchemaField {
	case "required":
		msg = name + " is required"
	case "properties": // additionalProperties: false
		prop := strings.TrimSuffix(strings.TrimPrefix(se.Reason, "property "), " is unsupported")
		if p, err := strconv.Unquote(prop); err == nil && text.Line("", p, 1, 64) == nil {
			f := joinField(obj, []string{p})
			return fault.Invalid(f, "unknown field "+f)
		}
		return fault.Invalid(name, "unknown field in "+name)
	case "enum":
		vals := make([]string, 0, len(sc.Enum))
		for _, v := range sc.Enum {
			vals = append(vals, fmt.Sprint(v))
		}
		msg = name + " must be one of " + strings.Join(vals, ", ")
	case "type":
		msg = name + " must be " + typeName(sc)
	case "format":
		msg = name + " must be a valid " + sc.Format
	case "minLength":
		if sc.MinLength == 1 {
			msg = name + " must not be empty"
		} else {
			msg = fmt.Sprintf("%s must be at least %d characters", name, sc.MinLength)
		}
	case "maxLength":
		if sc.MaxLength != nil {
			msg = fmt.Sprintf("%s must be at most %d characters", name, *sc.MaxLength)
		}
	case "minimum":
		if sc.Min != nil {
			msg = fmt.Sprintf("%s must be at least %v", name, *sc.Min)
		}
	case "maximum":
		if sc.Max != nil {
			msg = fmt.Sprintf("%s must be at most %v", name, *sc.Max)
		}
	case "maxItems":
		if sc.MaxItems != nil {
			msg = fmt.Sprintf("%s must have at most %s", name, items(*sc.MaxItems))
		}
	case "minItems":
		if sc.MinItems == 1 {
			msg = name + " must not be empty"
		} else {
			msg = fmt.Sprintf("%s must have at least %s", name, items(sc.MinItems))
		}
	}
	return fault.Invalid(field, msg)
}

// items is "1 item", "n items".
func items(n uint64) string {
	if n == 1 {
		return "1 item"
	}
	return strconv.FormatUint(n, 10) + " items"
}

func typeName(sc *openapi3.Schema) string {
	switch {
	case sc.Type.Is("integer"):
		return "an integer"
	case sc.Type.Is("number"):
		return "a number"
	case sc.Type.Is("boolean"):
		return "a boolean"
	case sc.Type.Is("array"):
		return "an array"
	case sc.Type.Is("object"):
		return "an object"
	case sc.Type.Is("string"):
		return "a string"
	}
	return "of another type"
}

// checkParamText applies the text policy to every string parameter the
// operation declares, before the schema (so a NUL is reported as such).
func checkParamText(r *http.Request, query url.Values, rt *route, pathParams map[string]string) error {
	for _, p := range rt.params {
		var vals []string
		switch p.In {
		case openapi3.ParameterInPath:
			vals = []string{pathParams[p.Name]}
		case openapi3.ParameterInQuery:
			vals = query[p.Name]
		case openapi3.ParameterInHeader:
			vals = r.Header.Values(p.Name)
		case openapi3.ParameterInCookie:
			if c, err := r.Cookie(p.Name); err == nil {
				vals = []string{c.Value}
			}
		}
		var sc *openapi3.Schema
		if p.Schema != nil {
			sc = p.Schema.Value
		}
		for _, v := range vals {
			if err := textRule(p.Name, v, sc); err != nil {
				return err
			}
		}
	}
	return nil
}

// checkQueryNames refuses a query parameter the operation does not
// declare, as a body's unknown field is refused: a misspelt filter
// (`?state=` where the operation takes `status`, `?limt=`) would otherwise
// be ignored and the answer look like one to the question asked. The
// parameter's name is named back under the rule for an unknown member's
// name (schemaFault); its value never is.
func checkQueryNames(query url.Values, rt *route) error {
	if len(query) == 0 {
		return nil
	}
	var takes []string
	for _, p := range rt.params {
		if p.In == openapi3.ParameterInQuery {
			takes = append(takes, p.Name)
		}
	}
	for _, name := range slices.Sorted(maps.Keys(query)) { // the first unknown by name: the same answer every time
		if slices.Contains(takes, name) {
			continue
		}
		hint := "it takes no query parameters"
		if len(takes) > 0 {
			hint = "it takes " + strings.Join(takes, ", ")
		}
		if text.Line("", name, 1, 64) != nil {
			return fault.Invalid("query", "unknown query parameter: "+hint)
		}
		return fault.Invalid(name, fmt.Sprintf("unknown query parameter %q: %s", name, hint))
	}
	return nil
}

// textRule applies the text policy to one string.
func textRule(field, v string, sc *openapi3.Schema) error {
	if sc != nil && sc.Extensions[extText] == "opaque" {
		return text.Opaque(field, v, 0)
	}
	return text.Line(field, v, 0, 0)
}

func bodySchema(op *openapi3.Operation) *openapi3.Schema {
	if op.RequestBody == nil || op.RequestBody.Value == nil {
		return nil
	}
	mt := op.RequestBody.Value.Content.Get("application/json")
	if mt == nil || mt.Schema == nil {
		return nil
	}
	return mt.Schema.Value
}

// walkText applies the text policy to every string (member names included)
// of a decoded body, following the schema for x-text exemptions.
func walkText(sc *openapi3.Schema, v any, field string) error {
	switch v := v.(type) {
	case string:
		return textRule(orBody(field), v, sc)
	case map[string]any:
		keys := make([]string, 0, len(v))
		for k := range v {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			f := joinField(field, []string{k})
			if err := text.Line(orBody(field), k, 0, 0); err != nil {
				return err
			}
			var sub *openapi3.Schema
			if sc != nil {
				if ref := sc.Properties[k]; ref != nil {
					sub = ref.Value
				}
			}
			if err := walkText(sub, v[k], f); err != nil {
				return err
			}
		}
	case []any:
		var items *openapi3.Schema
		if sc != nil && sc.Items != nil {
			items = sc.Items.Value
		}
		for i, e := range v {
			if err := walkText(items, e, joinField(field, []string{strconv.Itoa(i)})); err != nil {
				return err
			}
		}
	}
	return nil
}

func orBody(field string) string {
	if field == "" {
		return "body"
	}
	return field
}
