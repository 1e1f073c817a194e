package config

import (
	"errors"
	"fmt"
	"os"
	"reflect"
	"sort"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/psgw/psgw/ingest"
)

// The adapters' sections are found through the ingest registry, never named here: an adapter
// package registers its section, its settings type with their defaults, and their checks
// (ingest.Module), and this file decodes, overrides, reads secrets for and validates those
// sections without knowing which adapters there are (docs/adapters.md, "Adding an adapter").
// The registry is read when a function here is called, not at init: adapter packages
// register in their own init, which may run after this package's.

// Adapter is one registered adapter with its settings from a Config.
type Adapter struct {
	Module   ingest.Module
	Settings ingest.Settings
}

// defaultAdapters returns every registered adapter's settings holding its defaults, by
// section.
func defaultAdapters() map[string]ingest.Settings {
	out := map[string]ingest.Settings{}
	for _, m := range ingest.Modules() {
		out[m.Section] = newSettings(m)
	}
	return out
}

// newSettings returns m's settings with their defaults. The config package must be able to
// decode into them, so they must be a pointer to a struct: anything else is a programming
// error in the adapter, found as the binary starts.
func newSettings(m ingest.Module) ingest.Settings {
	s := m.New()
	if v := reflect.ValueOf(s); v.Kind() != reflect.Pointer || v.IsNil() || v.Elem().Kind() != reflect.Struct {
		panic(fmt.Sprintf("config: adapter %s: Module.New must return a pointer to its Config struct, got %T", m.Kind, s))
	}
	return s
}

// adapterSettings returns c's settings for m, adding m's defaults when c has none (a Config
// built by hand, or an adapter section a test removed and a variable sets again).
func (c *Config) adapterSettings(m ingest.Module) ingest.Settings {
	if s, ok := c.Adapters[m.Section]; ok && s != nil {
		return s
	}
	if c.Adapters == nil {
		c.Adapters = map[string]ingest.Settings{}
	}
	s := newSettings(m)
	c.Adapters[m.Section] = s
	return s
}

// EnabledAdapters returns the registered adapters whose section in c turns them on, in the
// order of ingest.Modules (by kind): the adapters the gateway runs.
func (c *Config) EnabledAdapters() []Adapter {
	var out []Adapter
	for _, m := range ingest.Modules() {
		if s, ok := c.Adapters[m.Section]; ok && s != nil && s.Enabled() {
			out = append(out, Adapter{Module: m, Settings: s})
		}
	}
	return out
}

// Shared is what the adapters' settings may see of the rest of c: the sources' column maps
// and the store's publish timeout.
func (c *Config) Shared() ingest.Shared {
	sh := ingest.Shared{PublishTimeout: c.Queue.PublishTimeout}
	if len(c.Sources) > 0 {
		sh.Sources = make(map[string]ingest.Source, len(c.Sources))
		for name, src := range c.Sources {
			sh.Sources[name] = ingest.Source{CSVColumns: src.CSVColumns}
		}
	}
	return sh
}

// validateAdapters runs every adapter section's own Validate, one problem per element, and
// checks what no single adapter can: that at most one feeds the demographics store.
func (c *Config) validateAdapters() []error {
	var errs []error
	shared := c.Shared()
	for _, section := range sortedSections(c.Adapters) {
		if s := c.Adapters[section]; s != nil {
			errs = append(errs, flatten(s.Validate(shared))...)
		}
	}
	if err := demographicsFeeds(c.EnabledAdapters()); err != nil {
		errs = append(errs, err)
	}
	return errs
}

// demographicsFeeds refuses more than one enabled adapter feeding the demographics store
// (ingest.DemographicsFeed): their patients would overwrite each other's.
func demographicsFeeds(enabled []Adapter) error {
	var feeds []string
	for _, a := range enabled {
		if _, ok := a.Settings.(ingest.DemographicsFeed); ok {
			feeds = append(feeds, a.Module.Section)
		}
	}
	if len(feeds) > 1 {
		return fmt.Errorf("%s: only one enabled adapter may feed the demographics store, and so does %s", feeds[1], feeds[0])
	}
	return nil
}

// flatten splits an errors.Join into its problems, so that each names its own key.
func flatten(err error) []error {
	if err == nil {
		return nil
	}
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		return j.Unwrap()
	}
	return []error{err}
}

func sortedSections(m map[string]ingest.Settings) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// schema is the type the key check walks for the whole file: the gateway's own sections
// and every registered adapter's, as Prometheus builds one for its service discovery
// configs. A section that is both the gateway's and an adapter's (http) takes the keys of
// both.
func schema() reflect.Type {
	mods := map[string]ingest.Module{}
	for _, m := range ingest.Modules() {
		mods[m.Section] = m
	}
	var fields []reflect.StructField
	add := func(name string, t reflect.Type) {
		fields = append(fields, reflect.StructField{
			Name: fmt.Sprintf("F%d", len(fields)), Type: t, Tag: reflect.StructTag(`yaml:"` + name + `"`),
		})
	}
	ct := reflect.TypeOf(Config{})
	for i := 0; i < ct.NumField(); i++ {
		f := ct.Field(i)
		name := yamlName(f)
		if name == "" || name == "-" {
			continue
		}
		t := f.Type
		if m, ok := mods[name]; ok {
			t = union(t, settingsType(m))
			delete(mods, name)
		}
		add(name, t)
	}
	for _, section := range sortedModuleSections(mods) {
		add(section, settingsType(mods[section]))
	}
	return reflect.StructOf(fields)
}

func sortedModuleSections(m map[string]ingest.Module) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// settingsType is the struct type of m's settings.
func settingsType(m ingest.Module) reflect.Type {
	return reflect.TypeOf(newSettings(m)).Elem()
}

// union is a struct type with the keyed fields of both a and b, for a section shared by the
// gateway and an adapter.
func union(a, b reflect.Type) reflect.Type {
	var fields []reflect.StructField
	for _, t := range []reflect.Type{a, b} {
		for i := 0; i < t.NumField(); i++ {
			f := t.Field(i)
			if name := yamlName(f); name != "" && name != "-" {
				fields = append(fields, reflect.StructField{Name: fmt.Sprintf("F%d", len(fields)), Type: f.Type, Tag: f.Tag})
			}
		}
	}
	return reflect.StructOf(fields)
}

func yamlName(f reflect.StructField) string {
	name, _, _ := strings.Cut(f.Tag.Get("yaml"), ",")
	return name
}

// decodeAdapters decodes each adapter section of the document into that adapter's settings,
// over their defaults. The keys were checked before (checkKeys against schema), so the
// decoding need not be strict; a section shared with the gateway (http) is decoded into
// both, each taking its own keys.
func decodeAdapters(doc *yaml.Node, cfg *Config) error {
	var sections map[string]yaml.Node // merge keys resolved by yaml
	if err := doc.Decode(&sections); err != nil {
		return err
	}
	for _, name := range sortedNodeKeys(sections) {
		m, ok := ingest.Lookup(name)
		if !ok {
			continue
		}
		n := sections[name]
		if err := n.Decode(cfg.adapterSettings(m)); err != nil {
			return err
		}
	}
	return nil
}

func sortedNodeKeys(m map[string]yaml.Node) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// MarshalYAML writes the configuration as one document, the adapters' sections included
// (the keys of a shared section beside the gateway's own), so that what it writes loads back
// as the same configuration.
func (c Config) MarshalYAML() (any, error) {
	type plain Config // without this method
	var doc yaml.Node
	if err := doc.Encode(plain(c)); err != nil {
		return nil, err
	}
	for _, section := range sortedSections(c.Adapters) {
		s := c.Adapters[section]
		if s == nil {
			continue
		}
		var n yaml.Node
		if err := n.Encode(s); err != nil {
			return nil, fmt.Errorf("%s: %w", section, err)
		}
		if own := mappingValue(&doc, section); own != nil && own.Kind == yaml.MappingNode {
			own.Content = append(own.Content, n.Content...)
			continue
		}
		doc.Content = append(doc.Content, &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: section}, &n)
	}
	return &doc, nil
}

// mappingValue returns the value of key in the mapping m, or nil.
func mappingValue(m *yaml.Node, key string) *yaml.Node {
	for i := 0; i+1 < len(m.Content); i += 2 {
		if m.Content[i].Value == key {
			return m.Content[i+1]
		}
	}
	return nil
}

// readAdapterSecrets reads the file named by an adapter's key X_file into its key X, when the
// section has both: a string gets the file's content without surrounding white space; a
// list gets one entry per line, blank lines and # comments skipped, added to those already
// given. The same holds in a mapping within the section, and in each mapping of a list (an
// entry {token_file, sources} of http.ingest_tokens gets its token). So sqlpoll.dsn_file
// fills sqlpoll.dsn and http.ingest_tokens_file adds to http.ingest_tokens, and no adapter
// reads a file for its settings.
func readAdapterSecrets(cfg *Config) error {
	for _, section := range sortedSections(cfg.Adapters) {
		if s := cfg.Adapters[section]; s != nil {
			if err := readSecretsIn(reflect.ValueOf(s).Elem(), section); err != nil {
				return err
			}
		}
	}
	return nil
}

// readSecretsIn reads the X_file keys of the struct v, whose keys are under path, and of
// the structs within it.
func readSecretsIn(v reflect.Value, path string) error {
	return walkSecretKeys(v, path, func(key, file string, target reflect.Value) error {
		b, err := os.ReadFile(file)
		if err != nil {
			return fmt.Errorf("%s: %w", key, err)
		}
		if err := setFromFile(target, string(b)); err != nil {
			return fmt.Errorf("%s: %w", key, err)
		}
		return nil
	})
}

// walkSecretKeys calls fn for every X_file key naming a file in the struct v, whose keys are
// under path, and in the structs within it (a mapping, each mapping of a list), with the
// key's full name, the file and the sibling X it fills, in key order.
func walkSecretKeys(v reflect.Value, path string, fn func(key, file string, target reflect.Value) error) error {
	fields := yamlFields(v.Type())
	for _, key := range sortedFieldKeys(fields) {
		f := v.FieldByIndex(fields[key].Index)
		switch {
		case f.Kind() == reflect.Struct && f.Type() != reflect.TypeOf(time.Duration(0)):
			if err := walkSecretKeys(f, path+"."+key, fn); err != nil {
				return err
			}
			continue
		case f.Kind() == reflect.Slice && f.Type().Elem().Kind() == reflect.Struct:
			for i := 0; i < f.Len(); i++ {
				if err := walkSecretKeys(f.Index(i), fmt.Sprintf("%s.%s[%d]", path, key, i), fn); err != nil {
					return err
				}
			}
			continue
		}
		base, ok := strings.CutSuffix(key, "_file")
		target, hasTarget := fields[base]
		if !ok || !hasTarget || f.Kind() != reflect.String || f.String() == "" {
			continue
		}
		if err := fn(path+"."+key, f.String(), v.FieldByIndex(target.Index)); err != nil {
			return err
		}
	}
	return nil
}

// SecretFile is a file named by an adapter's X_file key.
type SecretFile struct {
	// Key is the key's full name (http.ingest_tokens[1].token_file); Path the file.
	Key, Path string
}

// AdapterSecretFiles lists the files named by the X_file keys of an adapter's section, in
// key order: those RereadAdapterSecrets reads.
func (c *Config) AdapterSecretFiles(section string) []SecretFile {
	s := c.UnreadAdapters[section]
	if s == nil {
		return nil
	}
	var out []SecretFile
	_ = walkSecretKeys(reflect.ValueOf(s).Elem(), section, func(key, file string, _ reflect.Value) error {
		out = append(out, SecretFile{Key: key, Path: file})
		return nil
	})
	return out
}

// RereadAdapterSecrets returns a copy of an adapter section's settings with the files its
// X_file keys name read afresh, over the section as it was before Load read any: a text gets
// the file's content now, a list the lines the file holds now in place of those it held.
// Reading the same files at start gives what Load gave; a token bound to sources stays bound
// to them. A file that cannot be read, or holds nothing (emptied, or caught half written),
// is an error naming its key, never quoting the file. It does not call Validate.
func (c *Config) RereadAdapterSecrets(section string) (ingest.Settings, error) {
	unread := c.UnreadAdapters[section]
	if unread == nil {
		return nil, fmt.Errorf("%s: the configuration was not loaded from its files, so its secrets cannot be read again", section)
	}
	s := cloneAdapters(map[string]ingest.Settings{section: unread})[section]
	err := walkSecretKeys(reflect.ValueOf(s).Elem(), section, func(key, file string, target reflect.Value) error {
		b, err := os.ReadFile(file)
		if err != nil {
			return fmt.Errorf("%s: %w", key, err)
		}
		if !holdsEntry(string(b)) {
			return fmt.Errorf("%s: %s holds nothing", key, file)
		}
		if err := setFromFile(target, string(b)); err != nil {
			return fmt.Errorf("%s: %w", key, err)
		}
		return nil
	})
	if err != nil {
		return nil, redactedError(err)
	}
	return s, nil
}

// holdsEntry reports whether a secret file's text holds anything setFromFile would take: a
// line that is neither blank nor a # comment.
func holdsEntry(text string) bool {
	for _, line := range strings.Split(text, "\n") {
		if line = strings.TrimSpace(line); line != "" && !strings.HasPrefix(line, "#") {
			return true
		}
	}
	return false
}

// cloneAdapters copies adapter settings deeply enough that reading secrets into the copy
// (setting texts, appending to lists, filling entries of lists) leaves the originals as
// they were.
func cloneAdapters(m map[string]ingest.Settings) map[string]ingest.Settings {
	if m == nil {
		return nil
	}
	out := make(map[string]ingest.Settings, len(m))
	for k, s := range m {
		if s == nil {
			out[k] = nil
			continue
		}
		out[k] = deepCopy(reflect.ValueOf(s)).Interface().(ingest.Settings)
	}
	return out
}

// deepCopy copies pointers, structs, slices and maps; anything else (funcs, channels,
// interfaces, unexported fields) is shared with the original.
func deepCopy(v reflect.Value) reflect.Value {
	switch v.Kind() {
	case reflect.Pointer:
		if v.IsNil() {
			return v
		}
		p := reflect.New(v.Elem().Type())
		p.Elem().Set(deepCopy(v.Elem()))
		return p
	case reflect.Struct:
		out := reflect.New(v.Type()).Elem()
		out.Set(v)
		for i := 0; i < v.NumField(); i++ {
			if out.Field(i).CanSet() {
				out.Field(i).Set(deepCopy(v.Field(i)))
			}
		}
		return out
	case reflect.Slice:
		if v.IsNil() {
			return v
		}
		out := reflect.MakeSlice(v.Type(), v.Len(), v.Len())
		for i := 0; i < v.Len(); i++ {
			out.Index(i).Set(deepCopy(v.Index(i)))
		}
		return out
	case reflect.Map:
		if v.IsNil() {
			return v
		}
		out := reflect.MakeMapWithSize(v.Type(), v.Len())
		for it := v.MapRange(); it.Next(); {
			out.SetMapIndex(it.Key(), deepCopy(it.Value()))
		}
		return out
	}
	return v
}

func sortedFieldKeys(m map[string]reflect.StructField) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// setFromFile sets a string to text, trimmed, or adds text's lines to a list of strings.
func setFromFile(v reflect.Value, text string) error {
	switch {
	case v.Kind() == reflect.String:
		v.SetString(strings.TrimSpace(text))
	case v.Kind() == reflect.Slice && (v.Type().Elem().Kind() == reflect.String || writtenAsText(v.Type().Elem())):
		for _, line := range strings.Split(text, "\n") {
			if line = strings.TrimSpace(line); line != "" && !strings.HasPrefix(line, "#") {
				item, err := textItem(v.Type().Elem(), line)
				if err != nil {
					return err
				}
				v.Set(reflect.Append(v, item))
			}
		}
	default:
		return errors.New("a file can only fill a text or a list of texts")
	}
	return nil
}
