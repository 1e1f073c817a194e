package main

import (
	"bytes"
	"encoding/csv"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/psgw/psgw/config"
	"github.com/psgw/psgw/fhir"
	"github.com/psgw/psgw/ingest/csvdrop"
	"github.com/psgw/psgw/ingest/hl7mllp/hl7"
	"github.com/psgw/psgw/internal/gateway"
)

// errUsage marks a problem with how psgw map was called rather than with the record.
var errUsage = errors.New("usage")

// warningPrefix starts each warning line of psgw map on standard error, so that warnings
// (fields not used, values fallen back on; the resource is still sent) are told apart from
// problems (the resource is not sent), which are written unprefixed, one per line.
const warningPrefix = "warning: "

// cmdMap is the dry run of README.md, "Commands": the resource on stdout, problems on stderr, exit
// 0 (valid), 1 (invalid) or 2 (usage). With problems the resource printed is the one built with
// validation skipped, so an operator can see where an unmapped value landed; it is never what the
// gateway would send. Warnings go to stderr too, each line prefixed "warning: ", and do not change
// the exit status.
func cmdMap(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("psgw map", flag.ContinueOnError)
	fs.SetOutput(stderr)
	source := fs.String("source", "", "source system `name` whose code maps apply")
	cfgPath := fs.String("config", "", "YAML config `file`")
	fs.Usage = func() {
		fmt.Fprintf(stderr, "Usage: psgw map --source NAME [--config FILE] FILE\n\n"+
			"Prints the FHIR resource that one source record would be sent as, and its problems.\n"+
			"FILE is a JSON incident, a CSV file (its first data row, through the source's\n"+
			"csv_columns) or an HL7 v2 message; - reads standard input.\n"+
			"Exit status: 0 valid, 1 invalid, 2 usage error.\n\nFlags:\n")
		fs.PrintDefaults()
	}
	// Accept the file before or after the flags.
	var files []string
	rest := args
	for len(rest) > 0 {
		if err := fs.Parse(rest); err != nil {
			if err == flag.ErrHelp {
				return 0
			}
			return 2
		}
		if fs.NArg() == 0 {
			break
		}
		files = append(files, fs.Arg(0))
		rest = fs.Args()[1:]
	}
	if missing := mapArgsProblem(*source, files); missing != "" {
		fmt.Fprintf(stderr, "psgw map: %s\n\n", missing)
		fs.Usage()
		return 2
	}
	cfg, err := loadConfig(*cfgPath)
	if err != nil {
		fmt.Fprintf(stderr, "psgw map: %v\n", err)
		return 2
	}
	var data []byte
	if files[0] == "-" {
		data, err = io.ReadAll(os.Stdin)
	} else {
		data, err = os.ReadFile(files[0])
	}
	if err != nil {
		fmt.Fprintf(stderr, "psgw map: %v\n", err)
		return 2
	}
	incident, problems, err := recordToIncident(cfg, *source, files[0], data)
	if err != nil {
		fmt.Fprintf(stderr, "psgw map: %v\n", err)
		return 2
	}
	var warnings []fhir.Warning
	if incident != nil {
		problems, warnings = mapIncident(cfg, *source, incident, stdout)
	}
	// Warnings do not change the exit status: the gateway would send the resource.
	for _, w := range warnings {
		fmt.Fprintln(stderr, warningPrefix+w.String())
	}
	for _, p := range problems {
		fmt.Fprintln(stderr, p.String())
	}
	if len(problems) > 0 {
		return 1
	}
	return 0
}

// mapArgsProblem says what is missing from psgw map's arguments, or "" when nothing is.
func mapArgsProblem(source string, files []string) string {
	switch {
	case source == "":
		return "--source is missing: name the source system whose code maps and columns apply (--source datix)"
	case len(files) == 0:
		return "FILE is missing: give the record to map (a JSON incident, a CSV file or an HL7 v2 message), or - for standard input"
	case len(files) > 1:
		return fmt.Sprintf("one FILE at a time, got %d", len(files))
	}
	return ""
}

// recordToIncident reads the record as its kind: JSON incident, CSV or HL7 v2. It returns
// the incident JSON, or problems that stop the record before mapping, or a usage error.
func recordToIncident(cfg config.Config, source, name string, data []byte) ([]byte, []fhir.Problem, error) {
	trimmed := bytes.TrimLeft(data, "\ufeff\x0b \t\r\n")
	switch {
	case bytes.HasPrefix(trimmed, []byte("MSH")):
		return nil, []fhir.Problem{hl7Problem(trimmed)}, nil
	case bytes.HasPrefix(trimmed, []byte("{")) || strings.HasSuffix(strings.ToLower(name), ".json"):
		return data, nil, nil
	default:
		return csvIncident(cfg, source, data)
	}
}

func hl7Problem(msg []byte) fhir.Problem {
	typ := "an HL7 v2 message"
	if m, err := hl7.Parse(bytes.TrimRight(msg, "\x1c\r\n")); err == nil {
		h := m.Header()
		typ = strings.Trim(h.MessageCode+"^"+h.TriggerEvent, "^") + " message"
	}
	return fhir.Problem{Field: "MSH-9", Message: typ + ": ADT messages update the gateway's patient demographics and are not incidents; nothing would be sent to the national service"}
}

// csvIncident maps the first data row of a CSV file through the source's csv_columns.
func csvIncident(cfg config.Config, source string, data []byte) ([]byte, []fhir.Problem, error) {
	cols := cfg.Sources[source].CSVColumns
	if len(cols) == 0 {
		return nil, nil, fmt.Errorf("%w: the file is not a JSON incident or an HL7 message, and source %q has no csv_columns in the config to read it as CSV", errUsage, source)
	}
	r := csv.NewReader(bytes.NewReader(data))
	r.FieldsPerRecord = -1
	header, err := r.Read()
	if err != nil {
		return nil, nil, fmt.Errorf("%w: reading the CSV header: %v", errUsage, err)
	}
	row, err := r.Read()
	if err == io.EOF {
		return nil, nil, fmt.Errorf("%w: the CSV file has a header but no data row", errUsage)
	}
	if err != nil {
		return nil, []fhir.Problem{{Message: "CSV row 2 is malformed: " + err.Error()}}, nil
	}
	// Read as the drop folder reads it when the CSV adapter takes this source's exports: its
	// date formats and time columns apply.
	format, _ := cfg.Adapters[csvdrop.Section].(*csvdrop.Config)
	if format == nil || format.Source != source {
		format = &csvdrop.Config{Source: source}
	}
	incident, problems := csvdrop.RowIncident(*format, cols, header, row)
	if len(problems) > 0 {
		return nil, problems, nil
	}
	return incident, nil, nil
}

// mapIncident parses, maps and checks the incident as the gateway does, writes the resource
// and returns the problems and the warnings.
func mapIncident(cfg config.Config, source string, data []byte, stdout io.Writer) ([]fhir.Problem, []fhir.Warning) {
	opt := fhir.ParseOptions{Now: time.Now(), Codes: gateway.CodeMaps(cfg)}
	if len(cfg.Sources) > 0 {
		opt.Sources = map[string]bool{}
		for name := range cfg.Sources {
			opt.Sources[name] = true
		}
	}
	in, problems := fhir.ParseIncident(data, opt)
	if len(problems) == 0 && in.Source != source {
		problems = append(problems, fhir.Problem{Field: "source", Message: fmt.Sprintf("is %q but --source is %q", in.Source, source)})
	}
	if len(problems) > 0 {
		var warnings []fhir.Warning
		if in != nil {
			warnings = in.Warnings
		}
		return problems, warnings
	}
	// The gateway's builder, so that the dry run maps as the gateway would (age precision,
	// placeholder dates, fallbacks quarantined), but quoting values in full: the operator
	// running it holds the record, and needs the value for a code map.
	b := gateway.NewBuilder(cfg)
	b.QuoteValues = true
	prep := b.Prepare(in)
	var out []byte
	if prep.Payload != nil {
		var buf bytes.Buffer
		_ = json.Indent(&buf, prep.Payload, "", "  ")
		out = buf.Bytes()
	} else if res := b.Build(in); res.Resource != nil {
		out, _ = json.MarshalIndent(res.Resource, "", "  ")
	}
	if out != nil {
		fmt.Fprintln(stdout, string(out))
	}
	return prep.Problems, prep.Warnings
}
