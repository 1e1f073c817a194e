package fhir

import (
	"encoding/json"
	"sort"
	"strconv"
	"strings"
)

// RecordFields are the incident fields a flat record (a CSV row) can fill, by the dotted
// name a column mapping uses. List fields take several values separated by ";". A flat
// record describes at most one patient, one medication and one device.
var RecordFields = []string{
	"local_id", "revision", "event_type", "occurred_at", "occurred_approximately", "time_of_day",
	"reported_at", "description", "immediate_actions", "process", "detection_point",
	"safety_challenges", "level_of_concern", "outcome_types",
	"location.organisation", "location.service_area", "location.within_service", "location.specialty",
	"reporter.role", "reporter.organisation", "reporter.involvement",
	"patient.nhs_number", "patient.local_patient_id", "patient.date_of_birth", "patient.sex",
	"patient.ethnicity", "patient.physical_harm", "patient.psychological_harm", "patient.clinical_outcome",
	"medication.name", "medication.administered", "medication.administered_by_device", "device.type",
	"risk.description", "risk.imminent", "risk.themes",
	"good_care.strengths", "good_care.how_future_occurrence",
	"governance.never_event", "governance.serious_incident", "governance.duty_of_candour",
}

var recordLists = map[string]bool{"safety_challenges": true, "outcome_types": true, "risk.themes": true}

// IncidentFromRecord turns one flat record into incident JSON for ParseIncident. columns maps
// an incident field (RecordFields) to the header name of the column that holds it; header
// and row are the record's header line and one data line. Empty cells are left out. The
// problems name unknown fields and missing columns; values are checked by ParseIncident.
func IncidentFromRecord(source string, columns map[string]string, header, row []string) ([]byte, []Problem) {
	index := make(map[string]int, len(header))
	for i, h := range header {
		index[strings.TrimSpace(strings.TrimPrefix(h, "\ufeff"))] = i
	}
	known := make(map[string]bool, len(RecordFields))
	for _, f := range RecordFields {
		known[f] = true
	}
	fields := make([]string, 0, len(columns))
	for f := range columns {
		fields = append(fields, f)
	}
	sort.Strings(fields)
	doc := map[string]any{"source": source}
	var ps []Problem
	for _, field := range fields {
		col := columns[field]
		if !known[field] {
			ps = append(ps, Problem{Field: "csv_columns." + field, Message: "is not a field a CSV column can fill"})
			continue
		}
		i, ok := index[col]
		if !ok {
			ps = append(ps, Problem{Field: "csv_columns." + field, Message: "names column " + strconv.Quote(col) + ", which the header does not have"})
			continue
		}
		if i >= len(row) || strings.TrimSpace(row[i]) == "" {
			continue
		}
		setRecordField(doc, field, strings.TrimSpace(row[i]))
	}
	data, _ := json.Marshal(doc) // maps of strings, numbers and bools always encode
	return data, ps
}

func setRecordField(doc map[string]any, field, v string) {
	var val any = v
	switch {
	case recordLists[field]:
		var list []string
		for _, s := range strings.Split(v, ";") {
			if s = strings.TrimSpace(s); s != "" {
				list = append(list, s)
			}
		}
		val = list
	case field == "revision":
		if n, err := strconv.Atoi(v); err == nil {
			val = n
		}
	case strings.HasPrefix(field, "governance."):
		if b, err := strconv.ParseBool(strings.ToLower(v)); err == nil {
			val = b
		} else if c, ok := yesNoWords[strings.ToLower(v)]; ok && c != "u" {
			val = c == "y"
		}
	}
	parent, name, nested := strings.Cut(field, ".")
	if !nested {
		doc[field] = val
		return
	}
	container := map[string]any{}
	switch parent {
	case "patient":
		doc["patients"] = []any{firstObject(doc["patients"], container)}
		container = doc["patients"].([]any)[0].(map[string]any)
	case "medication", "device":
		agents := object(doc, "agents")
		key := parent + "s"
		agents[key] = []any{firstObject(agents[key], container)}
		container = agents[key].([]any)[0].(map[string]any)
	default:
		container = object(doc, parent)
	}
	container[name] = val
}

func object(doc map[string]any, key string) map[string]any {
	if m, ok := doc[key].(map[string]any); ok {
		return m
	}
	m := map[string]any{}
	doc[key] = m
	return m
}

func firstObject(list any, def map[string]any) map[string]any {
	if l, ok := list.([]any); ok && len(l) > 0 {
		if m, ok := l[0].(map[string]any); ok {
			return m
		}
	}
	return def
}
