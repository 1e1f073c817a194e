// Package mapping holds the tests that join the LFPSE mapping (package fhir) to the national
// simulator (package sim): what the gateway would send is accepted there, and what it would
// quarantine is refused there too. They live here because fhir may import nothing of psgw's
// but its own subpackages.
package mapping
