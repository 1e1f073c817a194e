package gateway

import (
	"github.com/psgw/psgw/config"
	"github.com/psgw/psgw/fhir"
)

// CodeMaps returns the fhir.CodeMapper for cfg's taxonomy version: the sources' code maps
// flattened once into one table, so mapping an incident costs map reads only.
func CodeMaps(cfg config.Config) fhir.CodeMapper {
	maps := make(fhir.SourceCodeMaps, len(cfg.Sources))
	for name, src := range cfg.Sources {
		maps[name] = src.CodeMaps
	}
	return fhir.NewCodeMaps(cfg.National.TaxonomyVersion, maps)
}
