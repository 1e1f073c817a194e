package fhir

import (
	"strconv"
	"strings"

	"github.com/psgw/psgw/fhir/taxonomy"
)

// agents maps what was involved: the agent extension (which kinds, drug names, whose
// actions, which buildings and services), one problem extension per kind, and a contained
// Medication or Device for each one that has answers of its own.
func (st *build) agents(ae *AdverseEvent) {
	a := st.in.Agents
	if a == nil {
		return
	}
	ag := st.ext("adverse-event-agent")
	kinds := func(code string, present bool) {
		if present {
			ag.code("InvolvedAgents", code)
		}
	}
	kinds(agentMedications, len(a.Medications) > 0 || a.MedicationProblem != nil)
	kinds(agentDevices, len(a.Devices) > 0 || a.DeviceProblem != nil)
	kinds(agentITSystems, a.ITSystems != nil)
	kinds(agentBuildings, a.Buildings != nil)
	kinds(agentEstates, a.Estates != nil)
	kinds(agentBlood, a.Blood != nil)
	kinds(agentBloodProducts, a.BloodProducts != nil)
	kinds(agentTissues, a.Tissues != nil)
	switch {
	case ag.empty() && (a.None || a.People != nil):
		// InvolvedAgents is mandatory in the extension; people are not one of its kinds.
		ag.code("InvolvedAgents", agentNone)
	case a.None:
		st.warn("agents.none", WarnNotSent, "not sent: agents of the kinds LFPSE lists are given, so \"none of the above\" would contradict them")
	}

	for i, m := range a.Medications {
		st.text(ag, "agents.medications["+strconv.Itoa(i)+"].name", "DrugsInvolved", m.Name)
		st.medication(ae, i, m)
	}
	if p := a.MedicationProblem; p != nil {
		e := st.ext("adverse-event-problem-medication")
		const f = "agents.medication_problem."
		st.codedList(e, f+"reactions", spec(f+"reactions"), p.Reactions)
		st.codedList(e, f+"factors", spec(f+"factors"), p.Factors)
		st.codedList(e, f+"too_much", spec(f+"too_much"), p.TooMuch)
		st.codedList(e, f+"too_little", spec(f+"too_little"), p.TooLittle)
		st.text(e, f+"description", "ProblemDescriptionDrugs", p.Description)
		st.codedList(e, f+"processes", spec(f+"processes"), p.Processes)
		st.codedList(e, f+"wrong_medication", spec(f+"wrong_medication"), p.WrongMedication)
		st.codedList(e, f+"packaging", spec(f+"packaging"), p.Packaging)
	}

	for i, d := range a.Devices {
		st.device(ae, i, d)
	}
	if p := a.DeviceProblem; p != nil {
		e := st.ext("adverse-event-problem-devices")
		const f = "agents.device_problem."
		st.codedList(e, f+"factors", spec(f+"factors"), p.Factors)
		st.codedList(e, f+"used_unnecessarily", spec(f+"used_unnecessarily"), p.UsedUnnecessarily)
		st.codedList(e, f+"insufficient", spec(f+"insufficient"), p.Insufficient)
		st.codedList(e, f+"wrong_usage", spec(f+"wrong_usage"), p.WrongUsage)
		st.codedList(e, f+"broken", spec(f+"broken"), p.Broken)
		st.text(e, f+"description", "ProblemDescriptionDevices", p.Description)
	}
	if p := a.ITSystems; p != nil {
		e := st.ext("adverse-event-problem-it-systems")
		st.codedList(e, "agents.it_systems.factors", spec("agents.it_systems.factors"), p.Factors)
		st.text(e, "agents.it_systems.description", "ProblemDescriptionSystemsSoftware", p.Description)
	}
	if p := a.Buildings; p != nil {
		st.codedList(ag, "agents.buildings.types", spec("agents.buildings.types"), p.Types)
		e := st.ext("adverse-event-problem-buildings-infrastructure")
		const f = "agents.buildings."
		st.codedList(e, f+"factors", spec(f+"factors"), p.Factors)
		st.codedList(e, f+"not_used", spec(f+"not_used"), p.NotUsed)
		st.codedList(e, f+"wrong", spec(f+"wrong"), p.Wrong)
		st.text(e, f+"description", "BuildingsInfrastructureProblem", p.Description)
	}
	if p := a.Estates; p != nil {
		st.codedList(ag, "agents.estates.types", spec("agents.estates.types"), p.Types)
		e := st.ext("adverse-event-problem-estates-services")
		const f = "agents.estates."
		st.codedList(e, f+"factors", spec(f+"factors"), p.Factors)
		st.codedList(e, f+"not_used", spec(f+"not_used"), p.NotUsed)
		st.codedList(e, f+"wrong", spec(f+"wrong"), p.Wrong)
		st.text(e, f+"description", "EstatesServicesProblem", p.Description)
	}
	if p := a.Blood; p != nil {
		e := st.ext("adverse-event-problem-blood")
		const f = "agents.blood."
		st.codedList(e, f+"factors", spec(f+"factors"), p.Factors)
		st.codedList(e, f+"too_much", spec(f+"too_much"), p.TooMuch)
		st.codedList(e, f+"too_little", spec(f+"too_little"), p.TooLittle)
		st.codedList(e, f+"wrong", spec(f+"wrong"), p.Wrong)
		st.codedList(e, f+"not_used", spec(f+"not_used"), p.NotUsed)
		st.codedList(e, f+"damaged", spec(f+"damaged"), p.Damaged)
		st.text(e, f+"description", "BloodProblem", p.Description)
	}
	if p := a.BloodProducts; p != nil {
		e := st.ext("adverse-event-problem-blood-products")
		const f = "agents.blood_products."
		st.text(e, f+"details", "BloodProductsDetails", p.Details)
		st.text(e, f+"brand", "BloodProductsBrand", p.Brand)
		st.text(e, f+"batch", "BloodProductsBatch", p.Batch)
		st.codedList(e, f+"factors", spec(f+"factors"), p.Factors)
		st.codedList(e, f+"too_much", spec(f+"too_much"), p.TooMuch)
		st.codedList(e, f+"too_little", spec(f+"too_little"), p.TooLittle)
		st.codedList(e, f+"wrong", spec(f+"wrong"), p.Wrong)
		st.codedList(e, f+"not_used", spec(f+"not_used"), p.NotUsed)
		st.codedList(e, f+"damaged", spec(f+"damaged"), p.Damaged)
		st.text(e, f+"description", "BloodProductsProblem", p.Description)
	}
	if p := a.Tissues; p != nil {
		e := st.ext("adverse-event-problem-tissues-organs")
		const f = "agents.tissues."
		st.codedList(e, f+"factors", spec(f+"factors"), p.Factors)
		st.codedList(e, f+"too_much", spec(f+"too_much"), p.TooMuch)
		st.codedList(e, f+"too_little", spec(f+"too_little"), p.TooLittle)
		st.codedList(e, f+"wrong", spec(f+"wrong"), p.Wrong)
		st.codedList(e, f+"damaged", spec(f+"damaged"), p.Damaged)
		st.text(e, f+"description", "ProblemDescriptionTissuesOrgans", p.Description)
		st.codedList(e, f+"not_used", spec(f+"not_used"), p.NotUsed)
	}
	if p := a.People; p != nil {
		st.codedList(ag, "agents.people.actions_by", spec("agents.people.actions_by"), p.ActionsBy)
		e := st.ext("adverse-event-problem-people")
		const f = "agents.people."
		st.text(e, f+"involvement_description", "ProblemDescriptionInvolvement", p.InvolvementDescription)
		st.codedList(e, f+"involvement", spec(f+"involvement"), p.Involvement)
		st.codedList(e, f+"actions", spec(f+"actions"), p.Actions)
		st.codedList(e, f+"too_much", spec(f+"too_much"), p.TooMuch)
		st.codedList(e, f+"unavailable", spec(f+"unavailable"), p.Unavailable)
		st.codedList(e, f+"too_little", spec(f+"too_little"), p.TooLittle)
		st.codedList(e, f+"wrong", spec(f+"wrong"), p.Wrong)
		st.codedList(e, f+"omitted", spec(f+"omitted"), p.Omitted)
		st.text(e, f+"actions_description", "ProblemDescriptionActions", p.ActionsDescription)
	}
	st.text(ag, "agents.sabre_report_number", "SabreReportNumber", a.SabreReportNumber)
	st.text(ag, "agents.shot_report_number", "ShotReportNumber", a.ShotReportNumber)
	st.text(ag, "agents.nhsbt_report_number", "NhsbtReportNumber", a.NHSBTReportNumber)
	st.text(ag, "agents.yellow_card_reference", "YellowCardReference", a.YellowCardReference)
}

// medication adds a contained Medication when the medicine has answers of its own: whether
// it was given using a device, and in v6 its dm+d ids. A bare name goes in DrugsInvolved
// only. Whether the medicine reached the patient (administered) has no LFPSE question:
// MedicationAdministration asks whether a device gave it (docs/mapping.md).
func (st *build) medication(ae *AdverseEvent, i int, m Medication) {
	prefix := "agents.medications[" + strconv.Itoa(i) + "]"
	if m.Administered != "" {
		st.warn(prefix+".administered", WarnNotSent, "not sent: LFPSE has no question for whether the medicine reached the patient (MedicationAdministration asks whether it was given using a device: administered_by_device); say it in the description")
	}
	var exts []*complexExt
	if m.AdministeredByDevice != "" {
		e := newExt(taxonomy.ExtensionURL(st.v, "medication-administration"))
		st.coded(e, prefix+".administered_by_device", spec("agents.medications.administered_by_device"), m.AdministeredByDevice)
		exts = append(exts, e)
	}
	dmd := []struct{ field, name, value string }{
		{".vtm_code", "VTMCode", m.VTMCode}, {".vtm_name", "VTMString", m.VTMName},
		{".vmp_code", "VMPCode", m.VMPCode}, {".vmp_name", "VMPString", m.VMPName},
	}
	if st.v == 5 {
		for _, d := range dmd {
			if d.value != "" {
				st.warn(prefix+d.field, WarnNotSent, "not sent: taxonomy v5 has no dm+d question (v6 %s)", d.name)
			}
		}
	} else if m.VTMCode != "" || m.VMPCode != "" || m.VTMName != "" || m.VMPName != "" {
		e := newExt(taxonomy.ExtensionURL(6, "medication-dmd"))
		for _, d := range dmd {
			if strings.HasSuffix(d.name, "Code") {
				e.code(d.name, d.value)
			} else {
				st.text(e, prefix+d.field, d.name, d.value)
			}
		}
		exts = append(exts, e)
	}
	if len(exts) == 0 {
		return
	}
	id := "medication" + strconv.Itoa(i+1)
	ae.Contained = append(ae.Contained, Contained{ResourceType: "Medication", ID: id, parts: exts})
	ae.SuspectEntity = append(ae.SuspectEntity, SuspectEntity{Instance: *ref(id)})
}

// device adds a contained Device for each device with a type.
func (st *build) device(ae *AdverseEvent, i int, d Device) {
	if d.Type == "" {
		return
	}
	e := newExt(taxonomy.ExtensionURL(st.v, "adverse-event-device-details"))
	st.coded(e, "agents.devices["+strconv.Itoa(i)+"].type", spec("agents.devices.type"), d.Type)
	id := "device" + strconv.Itoa(i+1)
	ae.Contained = append(ae.Contained, Contained{ResourceType: "Device", ID: id, parts: []*complexExt{e}})
	ae.SuspectEntity = append(ae.SuspectEntity, SuspectEntity{Instance: *ref(id)})
}
