package hl7

import (
	"errors"
	"testing"
	"time"
)

func TestGet(t *testing.T) {
	m := mustParse(t, join(
		`MSH|^~\&|EPR^1.2.3^ISO|RGT|PSGW|RGT|20240315103000||ADT^A01^ADT_A01|MSG1|P|2.5`,
		`PID|1||111^^^RGT^MR~222^^^ALT&9.9&ISO^PI||SMITH^JANE\S\ANN||19650412|F`,
		`NK1|1|SMITH^JOHN|SPO`,
		`NK1|2|SMITH^ANNE|DAU`,
		`ZPI|1|custom`,
		`PV1`,
	))
	tests := []struct{ path, want string }{
		{"MSH-1", "|"},
		{"MSH-2", `^~\&`},
		{"MSH-3", "EPR"},
		{"MSH-3-2", "1.2.3"},
		{"MSH-4", "RGT"},
		{"MSH-7", "20240315103000"},
		{"MSH-9", "ADT"},
		{"MSH-9-2", "A01"},
		{"MSH-9-3", "ADT_A01"},
		{"MSH-10", "MSG1"},
		{"MSH-12", "2.5"},
		{"MSH-13", ""},
		{"PID-1", "1"},
		{"PID-2", ""},
		{"PID-3", "111"},
		{"PID-3-4", "RGT"},
		{"PID-3(2)", "222"},
		{"PID-3(2)-4", "ALT"},
		{"PID-3(2)-4-2", "9.9"},
		{"PID-3(2)-5", "PI"},
		{"PID-3(3)", ""},
		{"PID-5", "SMITH"},
		{"PID-5-2", "JANE^ANN"},
		{"PID-5-9", ""},
		{"PID-8", "F"},
		{"PID-99", ""},
		{"NK1-2", "SMITH"},
		{"NK1(2)-2-2", "ANNE"},
		{"NK1(3)-2", ""},
		{"ZPI-2", "custom"},
		{"PV1-3", ""},
		{"OBX-5", ""},
		{"PID(1)-3(1)-1-1", "111"},
	}
	for _, tt := range tests {
		t.Run(tt.path, func(t *testing.T) {
			got, err := m.Lookup(tt.path)
			if err != nil {
				t.Fatalf("Lookup: %v", err)
			}
			if got != tt.want {
				t.Errorf("got %q, want %q", got, tt.want)
			}
		})
	}
}

func TestLookupMalformed(t *testing.T) {
	m := mustParse(t, msgA01v23)
	for _, path := range []string{"", "PID", "PID-", "PID-0", "PID-3(0)", "PID-3(", "PID-3(x)", "pid-3", "PID-3-", "PID-3-1-1-1", "PID-3 ", "PID3", "PID-9999999", "PID(2-3"} {
		t.Run(path, func(t *testing.T) {
			if _, err := m.Lookup(path); !errors.Is(err, errBadPath) {
				t.Errorf("got %v, want errBadPath", err)
			}
			if got := m.Get(path); got != "" {
				t.Errorf("Get: got %q, want empty", got)
			}
		})
	}
}

func TestTypedAccessors(t *testing.T) {
	m := mustParse(t, msgA01v23)
	pid, ok := m.First("PID")
	if !ok {
		t.Fatal("no PID")
	}
	ids := pid.Field(3)
	if got := ids.NumRepetitions(); got != 2 {
		t.Fatalf("PID-3 repetitions: got %d, want 2", got)
	}
	reps := ids.Repetitions()
	if len(reps) != 2 {
		t.Fatalf("Repetitions: got %d, want 2", len(reps))
	}
	if got := reps[1].Component(5).Value(); got != "MR" {
		t.Errorf("PID-3(2)-5: got %q, want MR", got)
	}
	if got := reps[0].NumComponents(); got != 5 {
		t.Errorf("PID-3(1) components: got %d, want 5", got)
	}
	if got := pid.Field(5).Component(2).Value(); got != "JANE" {
		t.Errorf("PID-5-2: got %q, want JANE", got)
	}
	if got, want := pid.Field(22).Value(), "A"; got != want {
		t.Errorf("PID-22: got %q, want %q", got, want)
	}
	if got := pid.NumFields(); got != 22 {
		t.Errorf("PID fields: got %d, want 22", got)
	}
	msh, _ := m.First("MSH")
	if got := msh.NumFields(); got != 12 {
		t.Errorf("MSH fields: got %d, want 12", got)
	}
	if got := msh.Field(1).Raw(); got != "|" {
		t.Errorf("MSH-1: got %q", got)
	}
	if got := msh.Field(2).Component(1).Value(); got != `^~\&` {
		t.Errorf("MSH-2 must not be split: got %q", got)
	}
	if got := msh.Field(2).Component(2).Value(); got != "" {
		t.Errorf("MSH-2-2: got %q, want empty", got)
	}
	if got := len(m.Segments("PV1")); got != 1 {
		t.Errorf("Segments(PV1): got %d, want 1", got)
	}
	if got := m.Segments("OBX"); got != nil {
		t.Errorf("Segments(OBX): got %v, want nil", got)
	}
	// Out-of-range and zero positions are empty, never a panic.
	var zero Segment
	if zero.Field(1).Value() != "" || pid.Field(0).Raw() != "" || pid.Field(3).Repetition(0).Raw() != "" ||
		pid.Field(3).Component(0).Raw() != "" || pid.Field(3).Component(1).Subcomponent(0) != "" ||
		pid.Field(40).Repetitions() != nil || pid.Field(40).NumRepetitions() != 0 ||
		pid.Field(40).Component(1).NumSubcomponents() != 0 || pid.Field(40).Repetition(1).NumComponents() != 0 {
		t.Error("absent positions must be empty")
	}
	if !mustParse(t, []byte("MSH|^~\\&|X\rPID|1|\"\"\r")).segs[1].Field(2).IsNull() {
		t.Error(`IsNull: got false for ""`)
	}
}

func TestTruncatedSegments(t *testing.T) {
	m := mustParse(t, join(`MSH|^~\&`, `EVN`, `PID|1`, `PV1|`))
	for _, path := range []string{"MSH-3", "MSH-9-2", "MSH-18", "EVN-2", "PID-3", "PID-3(2)-4-2", "PV1-3", "PV1-1"} {
		if got := m.Get(path); got != "" {
			t.Errorf("%s: got %q, want empty", path, got)
		}
	}
	h := m.Header()
	if h != (Header{}) {
		t.Errorf("Header of a bare MSH: got %+v, want zero", h)
	}
}

func TestZSegmentsKept(t *testing.T) {
	m := mustParse(t, msgA08v24)
	z := m.Segments("ZPI")
	if len(z) != 1 {
		t.Fatalf("ZPI: got %d segments, want 1", len(z))
	}
	if got := z[0].Field(2).Value(); got != "local extension data" {
		t.Errorf("ZPI-2: got %q", got)
	}
	if got := z[0].Field(3).Value(); got != "\r" {
		t.Errorf(`ZPI-3 \X0D\: got %q, want CR`, got)
	}
}

func TestHeader(t *testing.T) {
	m := mustParse(t, msgA03v25)
	got := m.Header()
	want := Header{
		SendingApplication: "EPR", SendingFacility: "RGT", ReceivingApplication: "PSGW", ReceivingFacility: "RGT",
		Time:        time.Date(2024, 3, 20, 14, 0, 0, 0, time.UTC),
		MessageCode: "ADT", TriggerEvent: "A03", MessageStructure: "ADT_A03",
		ControlID: "MSG00003", ProcessingID: "P", Version: "2.5", Charset: "UNICODE UTF-8",
	}
	if got != want {
		t.Errorf("got %+v\nwant %+v", got, want)
	}
	c := mustParse(t, msgCustom).Header()
	if c.TriggerEvent != "A01" || c.ControlID != "MSG00010" || c.Version != "2.4" {
		t.Errorf("custom delimiters header: got %+v", c)
	}
}

func TestCustomDelimiters(t *testing.T) {
	m := mustParse(t, msgCustom)
	tests := []struct{ path, want string }{
		{"MSH-1", "#"},
		{"MSH-2", "!*$@"},
		{"MSH-9-2", "A01"},
		{"PID-3", "9434765870"},
		{"PID-3(2)", "X99#1"},
		{"PID-3(2)-4", "RGT"},
		{"PID-3(2)-4-2", "2.16.840.1.113883"},
		{"PID-5", "SMITH@JONES"},
		{"PID-5-2", "ANNA"},
		{"PV1-3", "WARD!1"},
		{"PV1-3-2", "BAY"},
	}
	for _, tt := range tests {
		t.Run(tt.path, func(t *testing.T) {
			if got := m.Get(tt.path); got != tt.want {
				t.Errorf("got %q, want %q", got, tt.want)
			}
		})
	}
}
