package gateway

import (
	"slices"

	"github.com/psgw/psgw/config"
	"github.com/psgw/psgw/fhir"
)

// NewBuilder is the LFPSE builder the configuration asks for: the taxonomy version, the age
// encoding and precision, the placeholder dates of birth, the sources' code maps and which
// sources' fallbacks are quarantined (docs/mapping.md). The gateway's mapper and psgw map
// use it, so that a dry run maps as the gateway would.
func NewBuilder(cfg config.Config) *fhir.Builder {
	dates := slices.Clone(cfg.Mapping.PlaceholderBirthDates)
	if dates == nil {
		dates = []string{} // the configuration cleared the list: none, not the builder's default
	}
	quarantine := map[string]bool{}
	for name := range cfg.Sources {
		quarantine[name] = cfg.QuarantinesFallbacks(name)
	}
	byDefault := cfg.QuarantinesFallbacks("")
	return &fhir.Builder{
		Version:               cfg.National.TaxonomyVersion,
		AgeEncoding:           cfg.Mapping.AgeEncoding,
		AgeBracketOnly:        cfg.Mapping.AgePrecision == "bracket",
		PlaceholderBirthDates: dates,
		Codes:                 CodeMaps(cfg),
		// Read only once built: safe for the mapper's workers to share.
		QuarantineFallbacks: func(source string) bool {
			if q, ok := quarantine[source]; ok {
				return q
			}
			return byDefault
		},
	}
}
