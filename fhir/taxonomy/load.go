package taxonomy

import (
	"bufio"
	"bytes"
	_ "embed"
	"encoding/json"
	"fmt"
	"strings"
	"sync"
)

//go:embed data/taxonomy-v5.json
var v5JSON []byte

//go:embed data/ods-codes-v5.tsv
var v5ODS []byte

// V5 returns the embedded v5 taxonomy. The first call decodes it (a few
// milliseconds); later calls return the same value.
func V5() *Taxonomy { return v5() }

// The embedded data is part of the binary, so a decode failure is a build
// defect, not a runtime condition: panic, and let the tests catch it.
var v5 = sync.OnceValue(func() *Taxonomy {
	t, err := decode(v5JSON, v5ODS)
	if err != nil {
		panic("taxonomy: embedded v5 data: " + err.Error())
	}
	return t
})

// The JSON layout of data/taxonomy-v5.json (see the LFPSE README §6).
type (
	fileTaxonomy struct {
		Version       int                     `json:"version"`
		CanonicalBase string                  `json:"canonical_base"`
		Profile       string                  `json:"profile"`
		Resources     map[string]fileResource `json:"resources"`
		ValueSets     map[string]fileValueSet `json:"value_sets"`
	}
	fileResource struct {
		ResourceType string          `json:"resource_type"`
		URL          string          `json:"url"`
		Extensions   []fileExtension `json:"extensions"`
	}
	fileExtension struct {
		SliceName   string      `json:"slice_name"`
		ID          string      `json:"id"`
		URL         string      `json:"url"`
		Min         int         `json:"min"`
		Max         int         `json:"max"`
		Description string      `json:"description"`
		Fields      []fileField `json:"fields"`
	}
	fileField struct {
		Name       string `json:"name"`
		Min        int    `json:"min"`
		Max        int    `json:"max"`
		Type       string `json:"type"`
		ValueKey   string `json:"value_key"`
		ValueSet   string `json:"value_set"`
		Definition string `json:"definition"`
	}
	fileValueSet struct {
		Name      string     `json:"name"`
		URL       string     `json:"url"`
		Codes     []fileCode `json:"codes"`
		CodesFile string     `json:"codes_file"`
	}
	fileCode struct {
		Code    string `json:"code"`
		Display string `json:"display"`
	}
)

// valueKeys maps a field type to the value[x] key it must use.
var valueKeys = map[string]string{
	"code":    "valueCode",
	"string":  "valueString",
	"integer": "valueInteger",
	"boolean": "valueBoolean",
	"date":    "valueDate",
	"time":    "valueTime",
}

// decode builds the indexed tables and checks the data's own consistency,
// so that the validator can trust every lookup.
func decode(taxJSON, odsTSV []byte) (*Taxonomy, error) {
	var f fileTaxonomy
	dec := json.NewDecoder(bytes.NewReader(taxJSON))
	if err := dec.Decode(&f); err != nil {
		return nil, fmt.Errorf("decoding taxonomy: %w", err)
	}
	t := &Taxonomy{
		Version:        f.Version,
		CanonicalBase:  f.CanonicalBase,
		Profile:        f.Profile,
		resources:      make(map[string]*Resource, len(f.Resources)),
		resourceByType: make(map[string]*Resource, len(f.Resources)),
		extByURL:       make(map[string]*Extension),
		extByID:        make(map[string]*Extension),
		valueSets:      make(map[string]*ValueSet, len(f.ValueSets)),
	}
	for id, fvs := range f.ValueSets {
		vs := &ValueSet{ID: id, Name: fvs.Name, URL: fvs.URL}
		codes := fvs.Codes
		if fvs.CodesFile != "" {
			if t.ods != nil {
				return nil, fmt.Errorf("value set %s: a second codes file", id)
			}
			var err error
			if codes, err = decodeODS(odsTSV); err != nil {
				return nil, err
			}
			t.ods = vs
		}
		if err := vs.index(codes); err != nil {
			return nil, fmt.Errorf("value set %s: %w", id, err)
		}
		t.valueSets[id] = vs
	}
	if t.ods == nil {
		return nil, fmt.Errorf("no ODS value set")
	}
	for id, fr := range f.Resources {
		r := &Resource{ID: id, Type: fr.ResourceType, URL: fr.URL}
		if _, dup := t.resourceByType[r.Type]; dup {
			return nil, fmt.Errorf("resource type %s has two profiles", r.Type)
		}
		t.resources[id], t.resourceByType[r.Type] = r, r
		for _, fe := range fr.Extensions {
			e, err := t.newExtension(r, fe)
			if err != nil {
				return nil, fmt.Errorf("resource %s: %w", id, err)
			}
			r.Extensions = append(r.Extensions, e)
		}
	}
	if p, ok := t.resourceByType["AdverseEvent"]; !ok || p.URL != t.Profile {
		return nil, fmt.Errorf("no AdverseEvent profile at %s", t.Profile)
	}
	return t, nil
}

func (t *Taxonomy) newExtension(r *Resource, fe fileExtension) (*Extension, error) {
	if _, dup := t.extByURL[fe.URL]; dup {
		return nil, fmt.Errorf("extension %s is used twice", fe.URL)
	}
	if !strings.HasPrefix(fe.URL, t.CanonicalBase+"/StructureDefinition/") || !strings.HasSuffix(fe.URL, "/"+fe.ID) {
		return nil, fmt.Errorf("extension %s: url %s does not match its id", fe.ID, fe.URL)
	}
	if fe.Min < 0 || fe.Max < 1 || fe.Min > fe.Max {
		return nil, fmt.Errorf("extension %s: bad cardinality %d..%d", fe.ID, fe.Min, fe.Max)
	}
	e := &Extension{
		ID: fe.ID, URL: fe.URL, SliceName: fe.SliceName, Resource: r,
		Min: fe.Min, Max: fe.Max, Description: fe.Description,
		fields: make(map[string]*Field, len(fe.Fields)),
	}
	for _, ff := range fe.Fields {
		fl := &Field{
			Name: ff.Name, Min: ff.Min, Max: ff.Max, Type: ff.Type,
			ValueKey: ff.ValueKey, ValueSet: ff.ValueSet, Definition: ff.Definition,
		}
		switch {
		case fl.Name == "":
			return nil, fmt.Errorf("extension %s: field with no name", fe.ID)
		case e.fields[fl.Name] != nil:
			return nil, fmt.Errorf("extension %s: field %s twice", fe.ID, fl.Name)
		case valueKeys[fl.Type] == "" || valueKeys[fl.Type] != fl.ValueKey:
			return nil, fmt.Errorf("field %s#%s: type %q with value key %q", fe.ID, fl.Name, fl.Type, fl.ValueKey)
		case fl.Min < 0 || fl.Max < 1 || fl.Min > fl.Max:
			return nil, fmt.Errorf("field %s#%s: bad cardinality %d..%d", fe.ID, fl.Name, fl.Min, fl.Max)
		case (fl.Type == "code") != (fl.ValueSet != ""):
			return nil, fmt.Errorf("field %s#%s: value set %q on type %s", fe.ID, fl.Name, fl.ValueSet, fl.Type)
		case fl.ValueSet != "" && t.valueSets[fl.ValueSet] == nil:
			return nil, fmt.Errorf("field %s#%s: unknown value set %s", fe.ID, fl.Name, fl.ValueSet)
		}
		e.Fields = append(e.Fields, fl)
		e.fields[fl.Name] = fl
	}
	t.extByURL[e.URL], t.extByID[e.ID] = e, e
	return e, nil
}

func (vs *ValueSet) index(codes []fileCode) error {
	vs.Codes = make([]Code, len(codes))
	vs.byCode = make(map[string]int, len(codes))
	vs.byDisplay = make(map[string]int, len(codes))
	for i, c := range codes {
		if c.Code == "" {
			return fmt.Errorf("empty code at %d", i)
		}
		if _, dup := vs.byCode[c.Code]; dup {
			return fmt.Errorf("code %s twice", c.Code)
		}
		vs.Codes[i] = Code(c)
		vs.byCode[c.Code] = i
		k := displayKey(c.Display)
		if _, dup := vs.byDisplay[k]; dup {
			vs.byDisplay[k] = -1 // ambiguous: CodeForDisplay refuses to guess
		} else {
			vs.byDisplay[k] = i
		}
	}
	return nil
}

// decodeODS reads the ODS list: "code<TAB>name" lines, no header.
func decodeODS(tsv []byte) ([]fileCode, error) {
	var codes []fileCode
	sc := bufio.NewScanner(bytes.NewReader(tsv))
	for n := 1; sc.Scan(); n++ {
		code, name, ok := strings.Cut(sc.Text(), "\t")
		if !ok || code == "" {
			return nil, fmt.Errorf("ods line %d: want code<TAB>name", n)
		}
		codes = append(codes, fileCode{Code: code, Display: name})
	}
	return codes, sc.Err()
}
