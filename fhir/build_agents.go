package fhir

import (
	"strconv"

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
	if ag.empty() && (a.None || a.People != nil) {
		// InvolvedAgents is mandatory in the extension; people are not one of its kinds.
		ag.code("InvolvedAgents", agentNone)
	}

	for i, m := range a.Medications {
		st.text(ag, "DrugsInvolved", m.Name)
		st.medication(ae, i, m)
	}
	if p := a.MedicationProblem; p != nil {
		e := st.ext("adverse-event-problem-medication")
		const f = "agents.medication_problem."
		st.codedList(e, f+"reactions", spec(f+"reactions"), p.Reactions)
		st.codedList(e, f+"factors", spec(f+"factors"), p.Factors)
		st.codedList(e, f+"too_much", spec(f+"too_much"), p.TooMuch)
		st.codedList(e, f+"too_little", spec(f+"too_little"), p.TooLittle)
		st.text(e, "ProblemDescriptionDrugs", p.Description)
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
		st.text(e, "ProblemDescriptionDevices", p.Description)
	}
	if p := a.ITSystems; p != nil {
		e := st.ext("adverse-event-problem-it-systems")
		st.codedList(e, "agents.it_systems.factors", spec("agents.it_systems.factors"), p.Factors)
		st.text(e, "ProblemDescriptionSystemsSoftware", p.Description)
	}
	if p := a.Buildings; p != nil {
		st.codedList(ag, "agents.buildings.types", spec("agents.buildings.types"), p.Types)
		e := st.ext("adverse-event-problem-buildings-infrastructure")
		const f = "agents.buildings."
		st.codedList(e, f+"factors", spec(f+"factors"), p.Factors)
		st.codedList(e, f+"not_used", spec(f+"not_used"), p.NotUsed)
		st.codedList(e, f+"wrong", spec(f+"wrong"), p.Wrong)
		st.text(e, "BuildingsInfrastructureProblem", p.Description)
	}
	if p := a.Estates; p != nil {
		st.codedList(ag, "agents.estates.types", spec("agents.estates.types"), p.Types)
		e := st.ext("adverse-event-problem-estates-services")
		const f = "agents.estates."
		st.codedList(e, f+"factors", spec(f+"factors"), p.Factors)
		st.codedList(e, f+"not_used", spec(f+"not_used"), p.NotUsed)
		st.codedList(e, f+"wrong", spec(f+"wrong"), p.Wrong)
		st.text(e, "EstatesServicesProblem", p.Description)
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
		st.text(e, "BloodProblem", p.Description)
	}
	if p := a.BloodProducts; p != nil {
		e := st.ext("adverse-event-problem-blood-products")
		const f = "agents.blood_products."
		st.text(e, "BloodProductsDetails", p.Details)
		st.text(e, "BloodProductsBrand", p.Brand)
		st.text(e, "BloodProductsBatch", p.Batch)
		st.codedList(e, f+"factors", spec(f+"factors"), p.Factors)
		st.codedList(e, f+"too_much", spec(f+"too_much"), p.TooMuch)
		st.codedList(e, f+"too_little", spec(f+"too_little"), p.TooLittle)
		st.codedList(e, f+"wrong", spec(f+"wrong"), p.Wrong)
		st.codedList(e, f+"not_used", spec(f+"not_used"), p.NotUsed)
		st.codedList(e, f+"damaged", spec(f+"damaged"), p.Damaged)
		st.text(e, "BloodProductsProblem", p.Description)
	}
	if p := a.Tissues; p != nil {
		e := st.ext("adverse-event-problem-tissues-organs")
		const f = "agents.tissues."
		st.codedList(e, f+"factors", spec(f+"factors"), p.Factors)
		st.codedList(e, f+"too_much", spec(f+"too_much"), p.TooMuch)
		st.codedList(e, f+"too_little", spec(f+"too_little"), p.TooLittle)
		st.codedList(e, f+"wrong", spec(f+"wrong"), p.Wrong)
		st.codedList(e, f+"damaged", spec(f+"damaged"), p.Damaged)
		st.text(e, "ProblemDescriptionTissuesOrgans", p.Description)
		st.codedList(e, f+"not_used", spec(f+"not_used"), p.NotUsed)
	}
	if p := a.People; p != nil {
		st.codedList(ag, "agents.people.actions_by", spec("agents.people.actions_by"), p.ActionsBy)
		e := st.ext("adverse-event-problem-people")
		const f = "agents.people."
		st.text(e, "ProblemDescriptionInvolvement", p.InvolvementDescription)
		st.codedList(e, f+"involvement", spec(f+"involvement"), p.Involvement)
		st.codedList(e, f+"actions", spec(f+"actions"), p.Actions)
		st.codedList(e, f+"too_much", spec(f+"too_much"), p.TooMuch)
		st.codedList(e, f+"unavailable", spec(f+"unavailable"), p.Unavailable)
		st.codedList(e, f+"too_little", spec(f+"too_little"), p.TooLittle)
		st.codedList(e, f+"wrong", spec(f+"wrong"), p.Wrong)
		st.codedList(e, f+"omitted", spec(f+"omitted"), p.Omitted)
		st.text(e, "ProblemDescriptionActions", p.ActionsDescription)
	}
	st.text(ag, "SabreReportNumber", a.SabreReportNumber)
	st.text(ag, "ShotReportNumber", a.ShotReportNumber)
	st.text(ag, "NhsbtReportNumber", a.NHSBTReportNumber)
	st.text(ag, "YellowCardReference", a.YellowCardReference)
}

// medication adds a contained Medication when the medicine has answers of its own: whether
// it was administered, and in v6 its dm+d ids. A bare name goes in DrugsInvolved only.
func (st *build) medication(ae *AdverseEvent, i int, m Medication) {
	var exts []*complexExt
	if m.Administered != "" {
		e := newExt(taxonomy.ExtensionURL(st.v, "medication-administration"))
		st.coded(e, "agents.medications["+strconv.Itoa(i)+"].administered", spec("agents.medications.administered"), m.Administered)
		exts = append(exts, e)
	}
	if st.v == 6 && (m.VTMCode != "" || m.VMPCode != "" || m.VTMName != "" || m.VMPName != "") {
		e := newExt(taxonomy.ExtensionURL(6, "medication-dmd"))
		e.code("VTMCode", m.VTMCode)
		st.text(e, "VTMString", m.VTMName)
		e.code("VMPCode", m.VMPCode)
		st.text(e, "VMPString", m.VMPName)
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
