// Package all links every ingest adapter psgw ships into the binary. Each adapter registers
// itself with ingest from its init (its kind, config section, settings and factory); the
// gateway imports this package once and finds them all through the registry, so adding an
// adapter is its folder and one line here (docs/adapters.md, "Adding an adapter"), as Caddy's
// modules/standard and Telegraf's plugins/inputs/all do.
//
// ingest/example is not here on purpose: it is the template to copy, an unauthenticated toy
// listener that a production gateway should not offer. Its tests import it the way a line
// here would.
package all

import (
	_ "github.com/psgw/psgw/ingest/csvdrop"  // csvdrop: CSV exports dropped in a folder
	_ "github.com/psgw/psgw/ingest/hl7mllp"  // mllp: the EPR's HL7 v2 feed
	_ "github.com/psgw/psgw/ingest/httppush" // http: POST /api/v1/incidents
	_ "github.com/psgw/psgw/ingest/sqlpoll"  // sqlpoll: polling an incident database
)
