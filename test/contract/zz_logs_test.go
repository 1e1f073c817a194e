package contract

import (
	"strings"
	"testing"
	"time"
)

// §6: identifiers are never written to logs. This runs after the other tests that use the
// shared gateway (files run in name order), so its log holds everything they sent; it adds
// refused inputs full of identifiers, which tempt a gateway to log what it refused.
func TestZZSharedGatewayLogHoldsNoIdentifiers(t *testing.T) {
	e := shared(t)
	// A refused incident whose patient is otherwise identifiable.
	inc := fullIncident(uid("LOGS"))
	inc["patients"] = []any{map[string]any{"nhs_number": nhsBad, "date_of_birth": dobBad, "local_patient_id": lpidFull, "sex": "F"}}
	check400(t, e.gw.postIncident(t, inc))
	// Malformed JSON carrying identifiers.
	check400(t, e.gw.post(t, []byte(`{"source":"datix","patients":[{"nhs_number":"`+nhsBad+`","date_of_birth":"`+dobBad+`"`)))
	// Wrong types around identifiers.
	check400(t, e.gw.post(t, []byte(`{"source":"datix","local_id":"`+uid("LOGS")+`","event_type":"incident","occurred_at":"2025-03-14","description":"x","patients":[{"nhs_number":"`+nhsBad+`","date_of_birth":`+strings.ReplaceAll(dobBad, "-", "")+`}]}`)))
	// An accepted incident with an NHS number in free text (redacted before it is sent) and
	// identifiers in fields the contract does not define (never mapped).
	ok := fullIncident(uid("LOGS"))
	ok["description"] = "Wristband read NHS " + nhsBad + " on admission."
	ok["x_patient"] = map[string]any{"name": familyEnr + " " + givenEnr, "born": dobBad, "address": streetEnr + " " + postEnr, "phone": phoneEnr}
	e.gw.mustAccept(t, ok)
	e.gw.waitSettled(t, "datix", ok["local_id"].(string))
	// HL7 messages full of identifiers that are refused or taken.
	m := dialMLLP(t, e.gw.mllp)
	pid := pidFor(nhsBad, lpidEnr, familyEnr, givenEnr, dobBad, "F")
	for _, msg := range []string{
		strings.Replace(adtMessage("A08", uid("LOGS"), pid), "ADT^A08", "ORU^R01", 1),
		strings.ReplaceAll(adtMessage("A08", uid("LOGS"), pid), "\r", "\n"),
		"EVN|A08\r" + pid + "\r",
		adtMessage("A31", uid("LOGS"), pid),
		adtMessage("A08", uid("LOGS"), strings.Replace(pid, "|F|", "|Q|", 1)),
	} {
		exchange(t, m, msg)
	}
	time.Sleep(500 * time.Millisecond) // let asynchronous log lines be written
	log := e.gw.out.String()
	if strings.Count(log, "\n") < 3 {
		t.Fatalf("the shared gateway wrote almost nothing at debug level; the check would mean little:\n%s", log)
	}
	assertNoIdentifiers(t, "log of the shared psgw run", log)
	assertNoIdentifiers(t, "events at the shared simulator", string(e.sim.eventsRaw(t)))
}
