package config

import (
	"bytes"
	"encoding"
	"errors"
	"fmt"
	"io"
	"os"
	"reflect"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"go.yaml.in/yaml/v3"

	"github.com/psgw/psgw/ingest"
)

// EnvPrefix starts every environment variable that overrides a setting.
const EnvPrefix = "PSGW_"

// Load builds the configuration: defaults, then the YAML file at path (skipped when path is
// empty), then PSGW_* variables from environ (os.Environ() form), then secrets named by *_file
// keys. It returns the first problem it meets, naming the key, with any credentials it would
// quote redacted (RedactCredentials). It does not call Validate.
func Load(path string, environ []string) (Config, error) {
	cfg, err := load(path, environ)
	return cfg, redactedError(err)
}

func load(path string, environ []string) (Config, error) {
	cfg := Default()
	if path != "" {
		data, err := os.ReadFile(path)
		if err != nil {
			return cfg, fmt.Errorf("reading config file: %w", err)
		}
		if err := decodeYAML(data, &cfg); err != nil {
			return cfg, fmt.Errorf("config file %s: %w", path, err)
		}
	}
	if err := applyEnv(&cfg, environ); err != nil {
		return cfg, err
	}
	cfg.UnreadAdapters = cloneAdapters(cfg.Adapters)
	if err := readSecretFiles(&cfg); err != nil {
		return cfg, err
	}
	return cfg, nil
}

// decodeYAML decodes strictly: an unknown key anywhere is an error naming its dotted path.
func decodeYAML(data []byte, cfg *Config) error {
	if len(bytes.TrimSpace(data)) == 0 {
		return nil
	}
	var root yaml.Node
	if err := yaml.Unmarshal(data, &root); err != nil {
		return placed(err, data, true)
	}
	if len(root.Content) == 0 {
		return nil
	}
	// The key check is the strict part: every key, adapters' sections and merged mappings
	// included, against the gateway's types and the registered adapters'. The decoding after
	// it need not be strict, and the adapters' sections are decoded into their own settings.
	if err := checkKeys(root.Content[0], schema(), "", map[checked]bool{}); err != nil {
		return err
	}
	if err := root.Decode(cfg); err != nil {
		return placed(err, data, false)
	}
	if err := decodeAdapters(&root, cfg); err != nil {
		return placed(err, data, false)
	}
	// A second document (after "---") would be dropped without a word: refuse one that holds
	// anything.
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var first yaml.Node
	if err := dec.Decode(&first); err != nil {
		return placed(err, data, false)
	}
	for {
		var next yaml.Node
		err := dec.Decode(&next)
		switch {
		case errors.Is(err, io.EOF):
			return nil
		case err != nil:
			return placed(err, data, false)
		case len(next.Content) > 0 && next.Content[0].Tag != "!!null":
			return fmt.Errorf("line %d: a second YAML document (after ---); put every setting in one", next.Content[0].Line)
		}
	}
}

// placed makes a yaml error say where the problem is. Most yaml errors name their line, but
// not those about the text itself (a control character, bytes that are not UTF-8), whose line
// is found here, nor those of the parser on the first line, which yaml leaves unnumbered. A
// decoding error without a line is about the document as a whole (too many aliases).
func placed(err error, data []byte, parsing bool) error {
	if lineNumber.MatchString(err.Error()) {
		return err
	}
	if line, what := badText(data); line > 0 {
		return fmt.Errorf("line %d: %s", line, what)
	}
	if parsing {
		return fmt.Errorf("line 1: %w", err)
	}
	return fmt.Errorf("the document: %w", err)
}

var lineNumber = regexp.MustCompile(`\bline [0-9]+`)

// badText finds the first character YAML does not allow in a UTF-8 document, by line.
func badText(data []byte) (int, string) {
	if bytes.HasPrefix(data, []byte{0xFF, 0xFE}) || bytes.HasPrefix(data, []byte{0xFE, 0xFF}) {
		return 0, "" // UTF-16, which yaml reads itself
	}
	data = bytes.TrimPrefix(data, []byte{0xEF, 0xBB, 0xBF})
	line := 1
	for len(data) > 0 {
		r, size := utf8.DecodeRune(data)
		switch {
		case r == utf8.RuneError && size <= 1:
			return line, "is not valid UTF-8 text; save the file as UTF-8"
		case r == '\n':
			line++
		case r == '\t', r == '\r', r == 0x85, r >= 0x20 && r <= 0x7E, r >= 0xA0 && r <= 0xD7FF,
			r >= 0xE000 && r <= 0xFFFD, r >= 0x10000:
		default:
			return line, fmt.Sprintf("holds the control character %U, which YAML does not allow", r)
		}
		data = data[size:]
	}
	return 0, ""
}

// checked is a node already checked against a type.
type checked struct {
	n *yaml.Node
	t reflect.Type
}

// checkKeys walks the YAML tree beside the Go type so that an unknown key is reported with its
// full path ("national.base_ur") rather than yaml's "field not found in type". It checks each
// node against each type once (seen): aliases can make the paths through a small document
// exponentially many, and the answer for a node does not depend on the path to it.
func checkKeys(n *yaml.Node, t reflect.Type, path string, seen map[checked]bool) error {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if n.Kind == yaml.AliasNode && n.Alias != nil {
		n = n.Alias
	}
	if seen[checked{n, t}] {
		return nil // passed before: a failure would have ended the walk
	}
	seen[checked{n, t}] = true
	if n.Kind == yaml.ScalarNode && n.Tag != "!!null" {
		if err := checkScalar(n, t); err != nil {
			return fmt.Errorf("line %d: %s %v", n.Line, displayPath(path), err)
		}
	}
	switch t.Kind() {
	case reflect.Struct:
		if n.Kind != yaml.MappingNode {
			if n.Kind == yaml.ScalarNode && (n.Tag == "!!null" || writtenAsText(t)) {
				return nil
			}
			return fmt.Errorf("line %d: %s must be a mapping", n.Line, displayPath(path))
		}
		fields := yamlFields(t)
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, v := n.Content[i], n.Content[i+1]
			if isMerge(k) {
				// The merged mappings' keys land in this one: they are checked as its own.
				if err := checkMerged(v, t, path, seen); err != nil {
					return err
				}
				continue
			}
			f, ok := fields[k.Value]
			if !ok {
				return fmt.Errorf("line %d: unknown key %q", k.Line, join(path, k.Value))
			}
			if err := checkKeys(v, f.Type, join(path, k.Value), seen); err != nil {
				return err
			}
		}
	case reflect.Map:
		if n.Kind != yaml.MappingNode {
			return nil
		}
		for i := 0; i+1 < len(n.Content); i += 2 {
			if err := checkKeys(n.Content[i+1], t.Elem(), join(path, n.Content[i].Value), seen); err != nil {
				return err
			}
		}
	case reflect.Slice:
		if n.Kind != yaml.SequenceNode {
			return nil
		}
		for i, c := range n.Content {
			if err := checkKeys(c, t.Elem(), fmt.Sprintf("%s[%d]", path, i), seen); err != nil {
				return err
			}
		}
	}
	return nil
}

// isMerge reports whether k is YAML's merge key, a plain <<.
func isMerge(k *yaml.Node) bool {
	return k.Kind == yaml.ScalarNode && k.Value == "<<" && k.Style&(yaml.SingleQuotedStyle|yaml.DoubleQuotedStyle) == 0 &&
		(k.Tag == "" || k.Tag == "!" || k.Tag == "!!merge" || k.Tag == "tag:yaml.org,2002:merge")
}

// checkMerged checks the mapping, or each mapping of the list, merged into a mapping of type
// t. Anything else under a merge key is left to the decoder, which refuses it.
func checkMerged(v *yaml.Node, t reflect.Type, path string, seen map[checked]bool) error {
	if v.Kind == yaml.AliasNode && v.Alias != nil {
		v = v.Alias
	}
	switch v.Kind {
	case yaml.MappingNode:
		return checkKeys(v, t, path, seen)
	case yaml.SequenceNode:
		for _, m := range v.Content {
			if m.Kind == yaml.AliasNode && m.Alias != nil {
				m = m.Alias
			}
			if m.Kind == yaml.MappingNode {
				if err := checkKeys(m, t, path, seen); err != nil {
					return err
				}
			}
		}
	}
	return nil
}

// checkScalar reports a scalar that cannot become the setting's type, so that the message
// names the key instead of a Go type.
func checkScalar(n *yaml.Node, t reflect.Type) error {
	if writtenAsText(t) {
		return nil // it reads the text itself (http.ingest_tokens' entries)
	}
	if t == reflect.TypeOf(time.Duration(0)) {
		if _, err := time.ParseDuration(n.Value); err != nil {
			return fmt.Errorf("must be a duration such as 30s or 5m, got %q", n.Value)
		}
		return nil
	}
	switch t.Kind() {
	case reflect.Int, reflect.Int64, reflect.Int32:
		if _, err := strconv.ParseInt(n.Value, 0, 64); err != nil {
			return fmt.Errorf("must be a whole number, got %q", n.Value)
		}
	case reflect.Float64:
		if _, err := strconv.ParseFloat(n.Value, 64); err != nil {
			return fmt.Errorf("must be a number, got %q", n.Value)
		}
	case reflect.Bool:
		if n.Tag != "!!bool" {
			return fmt.Errorf("must be true or false, got %q", n.Value)
		}
	case reflect.Struct, reflect.Map:
		return errors.New("must be a mapping")
	case reflect.Slice:
		return errors.New("must be a list")
	}
	return nil
}

func displayPath(p string) string {
	if p == "" {
		return "the document"
	}
	return p
}

func join(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

func yamlFields(t reflect.Type) map[string]reflect.StructField {
	out := make(map[string]reflect.StructField, t.NumField())
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		name, _, _ := strings.Cut(f.Tag.Get("yaml"), ",")
		if name == "" || name == "-" {
			continue
		}
		out[name] = f
	}
	return out
}

// envKey is one setting that an environment variable can override.
type envKey struct {
	path    string // dotted YAML path
	adapter string // the adapter section holding it, "" for the gateway's own settings
	index   []int  // reflect field index from Config, or from the adapter's settings
}

// envKeys lists every scalar or list setting by its environment variable name, the
// registered adapters' included. Maps (code maps) have no environment form.
func envKeys() map[string]envKey {
	out := map[string]envKey{}
	var walk func(t reflect.Type, path, adapter string, index []int)
	walk = func(t reflect.Type, path, adapter string, index []int) {
		for i := 0; i < t.NumField(); i++ {
			f := t.Field(i)
			name, _, _ := strings.Cut(f.Tag.Get("yaml"), ",")
			if name == "" || name == "-" {
				continue
			}
			p := join(path, name)
			idx := append(append([]int(nil), index...), i)
			if f.Type.Kind() == reflect.Struct && f.Type != reflect.TypeOf(time.Duration(0)) {
				walk(f.Type, p, adapter, idx)
				continue
			}
			if f.Type.Kind() == reflect.Map {
				continue
			}
			env := EnvPrefix + strings.ToUpper(strings.ReplaceAll(p, ".", "_"))
			out[env] = envKey{path: p, adapter: adapter, index: idx}
		}
	}
	walk(reflect.TypeOf(Config{}), "", "", nil)
	for _, m := range ingest.Modules() {
		walk(settingsType(m), m.Section, m.Section, nil)
	}
	return out
}

// EnvNames returns every supported environment variable with the key it sets, sorted.
func EnvNames() [][2]string {
	var out [][2]string
	for env, k := range envKeys() {
		out = append(out, [2]string{env, k.path})
	}
	sort.Slice(out, func(i, j int) bool { return out[i][0] < out[j][0] })
	return out
}

// UnknownEnv returns PSGW_ variables in environ that match no setting, so the caller can warn
// about a likely typo without refusing to start.
func UnknownEnv(environ []string) []string {
	keys := envKeys()
	var out []string
	for _, kv := range environ {
		name, _, _ := strings.Cut(kv, "=")
		if strings.HasPrefix(name, EnvPrefix) {
			if _, ok := keys[name]; !ok {
				out = append(out, name)
			}
		}
	}
	sort.Strings(out)
	return out
}

func applyEnv(cfg *Config, environ []string) error {
	keys := envKeys()
	root := reflect.ValueOf(cfg).Elem()
	for _, kv := range environ {
		name, val, ok := strings.Cut(kv, "=")
		if !ok {
			continue
		}
		k, known := keys[name]
		if !known {
			continue
		}
		target := root
		if k.adapter != "" {
			m, _ := ingest.Lookup(k.adapter)
			target = reflect.ValueOf(cfg.adapterSettings(m)).Elem()
		}
		if err := setScalar(target.FieldByIndex(k.index), val); err != nil {
			return fmt.Errorf("environment variable %s (%s): %w", name, k.path, err)
		}
	}
	return nil
}

func setScalar(v reflect.Value, s string) error {
	if v.Type() == reflect.TypeOf(time.Duration(0)) {
		d, err := time.ParseDuration(strings.TrimSpace(s))
		if err != nil {
			return fmt.Errorf("not a duration like 30s or 5m: %q", s)
		}
		v.SetInt(int64(d))
		return nil
	}
	switch v.Kind() {
	case reflect.String:
		v.SetString(s)
	case reflect.Int, reflect.Int64, reflect.Int32:
		n, err := strconv.ParseInt(strings.TrimSpace(s), 10, 64)
		if err != nil {
			return fmt.Errorf("not a whole number: %q", s)
		}
		v.SetInt(n)
	case reflect.Float64:
		f, err := strconv.ParseFloat(strings.TrimSpace(s), 64)
		if err != nil {
			return fmt.Errorf("not a number: %q", s)
		}
		v.SetFloat(f)
	case reflect.Bool:
		b, err := strconv.ParseBool(strings.TrimSpace(s))
		if err != nil {
			return fmt.Errorf("not true or false: %q", s)
		}
		v.SetBool(b)
	case reflect.Slice:
		list := reflect.MakeSlice(v.Type(), 0, 0)
		for _, p := range strings.Split(s, ",") {
			if p = strings.TrimSpace(p); p != "" {
				item, err := textItem(v.Type().Elem(), p)
				if err != nil {
					return err
				}
				list = reflect.Append(list, item)
			}
		}
		v.Set(list)
	default:
		return errors.New("cannot be set from the environment")
	}
	return nil
}

// textMarshaled is encoding.TextUnmarshaler's type.
var textUnmarshaler = reflect.TypeOf((*encoding.TextUnmarshaler)(nil)).Elem()

// writtenAsText reports whether a setting of type t (a struct) may be written as text in the
// file, the environment or a list file: it reads the text itself (encoding.TextUnmarshaler),
// as an entry of http.ingest_tokens does.
func writtenAsText(t reflect.Type) bool {
	return t.Kind() == reflect.Struct && reflect.PointerTo(t).Implements(textUnmarshaler)
}

// textItem makes an element of a list of type elem from text: the text itself for a list of
// strings, or what the element makes of it when it is written as text.
func textItem(elem reflect.Type, text string) (reflect.Value, error) {
	if writtenAsText(elem) {
		item := reflect.New(elem)
		if err := item.Interface().(encoding.TextUnmarshaler).UnmarshalText([]byte(text)); err != nil {
			return reflect.Value{}, err
		}
		return item.Elem(), nil
	}
	if elem.Kind() != reflect.String {
		return reflect.Value{}, errors.New("cannot be set from text")
	}
	return reflect.ValueOf(text).Convert(elem), nil
}

// readSecretFiles loads secrets named by *_file keys so that they need not sit in the YAML
// file or the environment.
func readSecretFiles(cfg *Config) error {
	if p := cfg.National.SubscriptionKeyFile; p != "" {
		key, err := ReadSubscriptionKeyFile(p)
		if err != nil {
			return err
		}
		cfg.National.SubscriptionKey = key
	}
	if err := readAdapterSecrets(cfg); err != nil {
		return err
	}
	if cfg.Ops.TokensFile != "" {
		ops, err := cfg.Ops.ReloadTokensFile()
		if err != nil {
			return err
		}
		cfg.Ops = ops
	}
	return nil
}

// ReadSubscriptionKeyFile reads national.subscription_key_file as Load does: the key is the
// file's text without surrounding white space.
func ReadSubscriptionKeyFile(path string) (string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return "", fmt.Errorf("national.subscription_key_file: %w", err)
	}
	return strings.TrimSpace(string(b)), nil
}
