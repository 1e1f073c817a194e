// Package epr runs the whole gateway in-process with its HL7 v2 MLLP listener: an EPR sends
// ADT messages over real TCP, an incident system posts incidents over HTTP, and the
// national-service simulator receives what is delivered. It checks that the demographics the
// EPR sent reach the payload as age and sex, and that no identifier does.
package epr

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/rs/zerolog"

	"github.com/psgw/psgw/config"
	"github.com/psgw/psgw/fhir"
	"github.com/psgw/psgw/ingest"
	"github.com/psgw/psgw/ingest/hl7mllp"
	"github.com/psgw/psgw/ingest/hl7mllp/hl7"
	"github.com/psgw/psgw/ingest/hl7mllp/mllptest"
	"github.com/psgw/psgw/internal/gateway"
	"github.com/psgw/psgw/ops"
	"github.com/psgw/psgw/patients"
	"github.com/psgw/psgw/queue"
	"github.com/psgw/psgw/sim"
	"github.com/psgw/psgw/test/wait"
)

const simKey = "epr-test-subscription-key"

func startGateway(t *testing.T) (*gateway.Gateway, *sim.Simulator) {
	t.Helper()
	return startGatewayWith(t, nil)
}

// startGatewayWith is startGateway with mutate applied to the configuration before it is
// validated.
func startGatewayWith(t *testing.T, mutate func(*config.Config)) (*gateway.Gateway, *sim.Simulator) {
	t.Helper()
	s, err := gateway.NewSimulator([]string{simKey}, sim.Faults{}, zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(s)
	t.Cleanup(srv.Close)
	cfg := config.Default()
	cfg.DataDir = t.TempDir()
	cfg.HTTP.Addr = "127.0.0.1:0"
	cfg.Adapters[hl7mllp.Section].(*hl7mllp.Config).Addr = "127.0.0.1:0"
	cfg.Queue.Sync = "1s"
	cfg.National.BaseURL = srv.URL
	cfg.National.SubscriptionKey = simKey
	cfg.National.BackoffInitial = 20 * time.Millisecond
	cfg.National.BackoffMax = 200 * time.Millisecond
	cfg.National.Timeout = 5 * time.Second
	if mutate != nil {
		mutate(&cfg)
	}
	if err := cfg.Validate(); err != nil {
		t.Fatalf("config: %v", err)
	}
	log := zerolog.Nop()
	if testing.Verbose() {
		log = zerolog.New(zerolog.ConsoleWriter{Out: os.Stderr}).Level(zerolog.InfoLevel)
	}
	gw, err := gateway.Start(context.Background(), cfg, gateway.Options{Logger: log})
	if err != nil {
		t.Fatalf("starting gateway: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		gw.Stop(ctx)
	})
	return gw, s
}

// Invented patients with published test NHS numbers. Bob is a duplicate registration of
// Jane, merged into hers by A40.
var (
	jane  = mllptest.Patient{NHS: "9434765919", Local: "RGT1234567", DOB: "19650412", Sex: "F", Ethnicity: "A", Location: "WARD7"}
	bob   = mllptest.Patient{NHS: "4010232137", Local: "RGT7777777", DOB: "19500101", Sex: "M"}
	carol = mllptest.Patient{Local: "RGT5555555", DOB: "20011231", Sex: "M", Location: "OPD2"}
)

func TestADTThenIncidentIsDeliveredWithAgeAndSexAndNoIdentifier(t *testing.T) {
	gw, s := startGateway(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	addr := gw.AdapterAddr(ctx, hl7mllp.Kind)
	if addr == "" {
		t.Fatal("the MLLP listener is not running")
	}
	c, err := mllptest.Dial(ctx, addr, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()

	t0 := time.Date(2025, 3, 10, 8, 0, 0, 0, time.UTC)
	at := func(h int) time.Time { return t0.Add(time.Duration(h) * time.Hour) }
	moved := jane
	moved.Location = "WARD9"
	carolUpdated := carol
	carolUpdated.Ethnicity = "C"
	msgs := []struct {
		name string
		msg  []byte
	}{
		{"A28 add jane", mllptest.ADT("A28", "E1", at(0), jane)},
		{"A01 admit jane", mllptest.ADT("A01", "E2", at(1), jane)},
		{"A02 transfer jane", mllptest.ADT("A02", "E3", at(2), moved)},
		{"A08 update jane", mllptest.ADT("A08", "E4", at(3), moved)},
		{"A04 register carol", mllptest.ADT("A04", "E5", at(4), carol)},
		{"A05 pre-admit carol", mllptest.ADT("A05", "E6", at(5), carol)},
		{"A31 update carol", mllptest.ADT("A31", "E7", at(6), carolUpdated)},
		{"A28 add bob", mllptest.ADT("A28", "E8", at(7), bob)},
		{"A03 discharge jane", mllptest.ADT("A03", "E9", at(8), mllptest.Patient{NHS: jane.NHS, Local: jane.Local})},
		{"A40 merge bob into jane", mllptest.ADTMerge("A40", "E10", at(9), mllptest.Patient{NHS: jane.NHS, Local: jane.Local}, &bob)},
	}
	for _, m := range msgs {
		ack, err := c.Send(m.msg)
		if err != nil {
			t.Fatalf("%s: %v", m.name, err)
		}
		if ack.Code != "AA" {
			t.Fatalf("%s: got %s (%s), want AA", m.name, ack.Code, ack.Text)
		}
	}

	// ADT records leave the raw stream after queue.adt_max_age; incidents stay for replay.
	lastADT, err := gw.Queue.LastRaw(ctx, queue.RawSubject(ingest.KindADT, "epr", hl7mllp.RecordKey("epr", hl7.PatientIDs{NHSNumber: jane.NHS})))
	if err != nil {
		t.Fatalf("reading jane's last ADT record: %v", err)
	}
	if got, want := lastADT.Header.Get(jetstream.MsgTTLHeader), (7 * 24 * time.Hour).String(); got != want {
		t.Errorf("ADT raw record TTL header: got %q, want %q (queue.adt_max_age)", got, want)
	}

	// The store forgets a patient mllp.demographics_max_age after the last word about them.
	// (The stage creates the bucket when it starts, which may be after the first AA.)
	var bucket jetstream.KeyValue
	wait.For(t, 30*time.Second, "the demographics bucket", func() (bool, string) {
		if bucket, err = gw.Queue.JetStream().KeyValue(ctx, patients.Bucket); err != nil {
			return false, err.Error()
		}
		return true, ""
	})
	st, err := bucket.Status(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if st.TTL() != 365*24*time.Hour {
		t.Errorf("demographics bucket TTL: got %v, want 8760h (mllp.demographics_max_age)", st.TTL())
	}

	// Incidents posted right after the ADT messages, naming patients only by identifier.
	post(t, gw, incident("EPR-1", map[string]any{"nhs_number": bob.NHS, "physical_harm": "low"})) // merged into Jane
	post(t, gw, incident("EPR-2", map[string]any{"local_patient_id": carol.Local, "physical_harm": "none"}))
	post(t, gw, incident("EPR-3", map[string]any{"nhs_number": jane.NHS, "sex": "unknown", "physical_harm": "none"})) // sex given: kept

	byID := waitDelivered(t, gw, s, "EPR-1", "EPR-2", "EPR-3")
	// The store holds what the EPR said, as at each time. (The incidents were mapped after the
	// store had applied every ADT message stored before them, so it has caught up by now.)
	for _, tc := range []struct {
		name, nhs, local string
		at               time.Time
		dob, sex, loc    string
	}{
		{"jane on the ward", jane.NHS, "", at(1), "1965-04-12", "female", "WARD7"},
		{"jane transferred", "", jane.Local, at(2), "1965-04-12", "female", "WARD9"},
		{"jane discharged", jane.NHS, "", at(8), "1965-04-12", "female", ""},
		{"bob, merged into jane", bob.NHS, "", at(10), "1965-04-12", "female", ""},
		{"carol", "", carol.Local, at(6), "2001-12-31", "male", "OPD2"},
	} {
		d, ok, err := gw.Patients.Lookup(ctx, tc.nhs, tc.local, tc.at)
		if err != nil || !ok || d.DateOfBirth != tc.dob || d.Sex != tc.sex || d.Location != tc.loc {
			t.Errorf("store, %s: got %+v found=%v err=%v, want dob %s sex %s location %q", tc.name, d, ok, err, tc.dob, tc.sex, tc.loc)
		}
	}

	// Jane was 59 years, 11 months and 2 days old on 2025-03-14 (LFPSE: 59*372 + 11*31 + 2).
	// Carol's age comes from the same calendar rules.
	occurred := time.Date(2025, 3, 14, 9, 30, 0, 0, time.UTC)
	carolDOB := time.Date(2001, 12, 31, 0, 0, 0, 0, time.UTC)
	y, m, d := fhir.AgeYMD(carolDOB, occurred)
	carolAge := float64(fhir.EncodeAge("lfpse372", y, m, d, carolDOB, occurred))
	for _, tc := range []struct {
		localID string
		age     float64
		gender  string
	}{
		{"EPR-1", 59*372 + 11*31 + 2, "female"},
		{"EPR-2", carolAge, "male"},
		{"EPR-3", 59*372 + 11*31 + 2, "unknown"},
	} {
		res := byID[tc.localID]
		ext := extensions(res)
		if got := ext["AgeAtTimeOfIncidentDays"]; got != tc.age {
			t.Errorf("%s: AgeAtTimeOfIncidentDays got %v, want %v\n%s", tc.localID, got, tc.age, res)
		}
		if got, want := ext["Gender"], genderCode(t, tc.gender); got != want {
			t.Errorf("%s: Gender got %v, want %v (%s)", tc.localID, got, want, tc.gender)
		}
		for _, id := range []string{jane.NHS, bob.NHS, jane.Local, bob.Local, carol.Local, "1965-04-12", "19650412", "2001-12-31", "20011231", "WARD7", "WARD9"} {
			if strings.Contains(string(res), id) {
				t.Errorf("%s: the payload holds %q, an identifier or date of birth", tc.localID, id)
			}
		}
	}
}

func incident(localID string, patient map[string]any) map[string]any {
	return map[string]any{
		"source": "datix", "local_id": localID, "event_type": "incident",
		"occurred_at": "2025-03-14T09:30:00Z", "description": "Fall while mobilising to the bathroom.",
		"patients": []map[string]any{patient},
		"location": map[string]any{"organisation": "RRK"},
		"reporter": map[string]any{"role": "Nurse or midwife", "organisation": "RRK"},
	}
}

func post(t *testing.T, gw *gateway.Gateway, body any) {
	t.Helper()
	b, _ := json.Marshal(body)
	resp, err := http.Post("http://"+gw.HTTPAddr()+"/api/v1/incidents", "application/json", bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusAccepted {
		t.Fatalf("POST: got %d, want 202", resp.StatusCode)
	}
}

// waitDelivered waits until every incident is delivered and returns the resources the
// simulator stored, by local id.
func waitDelivered(t *testing.T, gw *gateway.Gateway, s *sim.Simulator, localIDs ...string) map[string]json.RawMessage {
	t.Helper()
	refs := map[string]string{}
	for _, id := range localIDs {
		wait.For(t, 60*time.Second, id+" delivered", func() (bool, string) {
			resp, err := http.Get("http://" + gw.HTTPAddr() + "/api/v1/incidents/datix/" + id)
			if err != nil {
				t.Fatal(err)
			}
			var rec ops.Record
			_ = json.NewDecoder(resp.Body).Decode(&rec)
			resp.Body.Close()
			if rec.State == "quarantined" || rec.State == "rejected" {
				t.Fatalf("%s: state %q (%s), want delivered", id, rec.State, rec.LastError)
			}
			if rec.State == "delivered" {
				refs[rec.NationalReference] = id
			}
			return rec.State == "delivered", fmt.Sprintf("state %q (%s)", rec.State, rec.LastError)
		})
	}
	out := map[string]json.RawMessage{}
	for _, ev := range s.Events() {
		if id, ok := refs[ev.Reference]; ok {
			out[id] = ev.Resource
		}
	}
	if len(out) != len(localIDs) {
		t.Fatalf("simulator holds %d of the %d incidents", len(out), len(localIDs))
	}
	return out
}

// extensions flattens a resource's extensions to the last path segment of their url and
// their value (valueInteger, valueCode, valueString, or valueCoding's code).
func extensions(res json.RawMessage) map[string]any {
	out := map[string]any{}
	var walk func(v any)
	walk = func(v any) {
		switch x := v.(type) {
		case map[string]any:
			if u, ok := x["url"].(string); ok {
				name := u[strings.LastIndexAny(u, "/#")+1:]
				for k, val := range x {
					if !strings.HasPrefix(k, "value") {
						continue
					}
					if c, ok := val.(map[string]any); ok {
						val = c["code"]
					}
					out[name] = val
				}
			}
			for _, val := range x {
				walk(val)
			}
		case []any:
			for _, val := range x {
				walk(val)
			}
		}
	}
	var v any
	_ = json.Unmarshal(res, &v)
	walk(v)
	return out
}

// genderCode is the LFPSE v5 Gender code for the ingest API's sex.
func genderCode(t *testing.T, sex string) any {
	t.Helper()
	codes := map[string]string{"female": "1", "male": "2", "unknown": "3", "other": "4"}
	c, ok := codes[sex]
	if !ok {
		t.Fatalf("no gender code for %q", sex)
	}
	return c
}

// TestUndeclaredLatin1IsAccepted: an EPR that sends ISO 8859-1 without declaring it in
// MSH-18 (common in UK trusts) gets AA by default, and its patient is stored; invalid UTF-8 in
// a message that declares UTF-8 still gets AR.
func TestUndeclaredLatin1IsAccepted(t *testing.T) {
	gw, _ := startGateway(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c, err := mllptest.Dial(ctx, gw.AdapterAddr(ctx, hl7mllp.Kind), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	zoe := mllptest.Patient{NHS: "9434765870", DOB: "19880701", Sex: "F"}
	msg := bytes.Replace(mllptest.ADT("A28", "L1", time.Now(), zoe), []byte("TEST^PATIENT"), []byte("ZO\xcb^SI\xc2N"), 1)
	if ack, err := c.Send(msg); err != nil || ack.Code != "AA" {
		t.Fatalf("undeclared Latin-1: got %+v, %v; want AA", ack, err)
	}
	wait.For(t, 30*time.Second, "the patient of an undeclared Latin-1 message stored", func() (bool, string) {
		d, ok, err := gw.Patients.Lookup(ctx, zoe.NHS, "", time.Now())
		return err == nil && ok && d.DateOfBirth == "1988-07-01", fmt.Sprintf("%+v %v %v", d, ok, err)
	})
	utf8Declared := bytes.Replace(msg, []byte("|P|2.4\r"), []byte("|P|2.4||||||UNICODE UTF-8\r"), 1)
	utf8Declared = bytes.Replace(utf8Declared, []byte("|L1|"), []byte("|L2|"), 1)
	if ack, err := c.Send(utf8Declared); err != nil || ack.Code != "AR" {
		t.Fatalf("Latin-1 bytes in a message declaring UTF-8: got %+v, %v; want AR", ack, err)
	}
}
