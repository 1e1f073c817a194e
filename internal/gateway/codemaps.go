package gateway

import (
	"strconv"

	"github.com/psgw/psgw/config"
	"github.com/psgw/psgw/fhir"
)

// configCodeMaps serves the per-source code maps of the config for one taxonomy version.
type configCodeMaps struct {
	version string
	sources map[string]config.SourceConfig
}

// CodeMaps returns the fhir.CodeMapper for cfg's taxonomy version.
func CodeMaps(cfg config.Config) fhir.CodeMapper {
	return configCodeMaps{version: strconv.Itoa(cfg.National.TaxonomyVersion), sources: cfg.Sources}
}

func (m configCodeMaps) Code(source, field, value string) (string, bool) {
	fields := m.sources[source].CodeMaps[field]
	if fields == nil {
		return "", false
	}
	if c, ok := fields[m.version][value]; ok {
		return c, true
	}
	c, ok := fields["*"][value]
	return c, ok
}
