package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/psgw/psgw/fhir"
	"github.com/psgw/psgw/internal/gateway"
)

// cmdMap is the dry run of CONTRACT §1: the resource on stdout, problems on stderr, exit 0
// (valid), 1 (invalid) or 2 (usage).
func cmdMap(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("psgw map", flag.ContinueOnError)
	fs.SetOutput(stderr)
	source := fs.String("source", "", "source system `name` whose code maps apply")
	cfgPath := fs.String("config", "", "YAML config `file`")
	fs.Usage = func() {
		fmt.Fprintf(stderr, "Usage: psgw map --source NAME [--config FILE] FILE\n\nPrints the FHIR resource that one JSON incident would be sent as, and its problems.\nExit status: 0 valid, 1 invalid, 2 usage error.\n\nFlags:\n")
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
	if *source == "" || len(files) != 1 {
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
	in, problems := fhir.ParseIncident(data, fhir.ParseOptions{Now: time.Now()})
	if len(problems) == 0 && in.Source != *source {
		problems = append(problems, fhir.Problem{Field: "source", Message: fmt.Sprintf("is %q but --source is %q", in.Source, *source)})
	}
	b := &fhir.Builder{Version: cfg.National.TaxonomyVersion, AgeEncoding: cfg.Mapping.AgeEncoding, Codes: gateway.CodeMaps(cfg)}
	if len(problems) == 0 {
		res := b.Build(in)
		prep := b.Prepare(in)
		problems = prep.Problems
		if res.Resource != nil {
			out, _ := json.MarshalIndent(res.Resource, "", "  ")
			if prep.Payload != nil {
				var v any
				_ = json.Unmarshal(prep.Payload, &v)
				out, _ = json.MarshalIndent(v, "", "  ")
			}
			fmt.Fprintln(stdout, string(out))
		}
	}
	for _, p := range problems {
		fmt.Fprintln(stderr, p.String())
	}
	if len(problems) > 0 {
		return 1
	}
	return 0
}
