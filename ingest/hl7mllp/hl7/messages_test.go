package hl7

import "strings"

// Test messages. Every patient in them is invented; the NHS numbers are the
// published test numbers, which pass Modulus 11.

func join(lines ...string) []byte { return []byte(strings.Join(lines, "\r") + "\r") }

var (
	msgA01v23 = join(
		`MSH|^~\&|EPR|RGT|PSGW|RGT|20240315103000||ADT^A01|MSG00001|P|2.3`,
		`EVN|A01|20240315102955`,
		`PID|1||9434765919^^^NHS^NH~RGT1234567^^^RGT^MR||SMITH^JANE^ANN^^MRS||19650412|F|||1 HIGH STREET^^LEEDS^^LS1 1AA||0113 496 0000|||||||||A`,
		`PV1|1|I|WARD7^BAY2^BED3^RGT||||C1234^JONES^ALAN|||MED||||1|||C1234^JONES^ALAN|IP|V123456`,
	)
	msgA02v24 = join(
		`MSH|^~\&|EPR|RGT|PSGW|RGT|20240316091500+0000||ADT^A02^ADT_A02|MSG00002|P|2.4`,
		`EVN|A02|20240316091455+0000`,
		`PID|1||RGT1234567^^^RGT^MR~9434765919^^^NHS^NH||SMITH^JANE||19650412|F`,
		`PV1|1|I|WARD9^BAY1^BED4^RGT|||WARD7^BAY2^BED3^RGT`,
	)
	msgA03v25 = join(
		`MSH|^~\&|EPR|RGT|PSGW|RGT|20240320140000+0000||ADT^A03^ADT_A03|MSG00003|P|2.5|||AL|NE||UNICODE UTF-8`,
		`EVN||20240320135900+0000`,
		`PID|1||9434765919^^^NHS^NH||SMITH^JANE||19650412|F`,
		`PV1|1|I|WARD9^BAY1^BED4^RGT|||||||||||||||V123456||||||||||||||||||01|||||||20240315103000|20240320135900`,
	)
	msgA04v25 = join(
		`MSH|^~\&|EPR|RGT|PSGW|RGT|20240401080000+0100||ADT^A04^ADT_A01|MSG00004|P|2.5`,
		`EVN||20240401075900`,
		`PID|1||RGT7654321^^^RGT^MR||O'NEIL^PAT||20011231|U||||||||||||||Z`,
		`PV1|1|O|OPD2^^^RGT`,
	)
	msgA05v23 = join(
		`MSH|^~\&|EPR|RGT|PSGW|RGT|20240402120000||ADT^A05|MSG00005|T|2.3`,
		`EVN|A05|20240402115959`,
		`PID|1||4010232137^^^NHS^NH||DOE^JOHN||1950|M`,
		`PV1|1|P|SURG1`,
	)
	msgA08v24 = join(
		`MSH|^~\&|EPR|RGT|PSGW|RGT|20240403101010||ADT^A08^ADT_A01|MSG00006|P|2.4|||||GBR|8859/1`,
		`EVN|A08|20240403101000`,
		"PID|1||9434765870^^^NHS^NH||CL\xC9MENT^AN\xCFS||19780230|F||||||||||||||H",
		`PV1|1|I|WARD3`,
		`ZPI|1|local extension data|\X0D\`,
	)
	msgA28v25 = join(
		`MSH|^~\&|EPR|RGT|PSGW|RGT|20240404090000+0000||ADT^A28^ADT_A05|MSG00007|P|2.5`,
		`EVN||20240404090000+0000`,
		`PID|1||9434765919^^^NHS^NH~RGT1234567^^^RGT^MR||SMITH^JANE||19650412|X`,
		`PV1||N`,
	)
	msgA31v25 = join(
		`MSH|^~\&|EPR|RGT|PSGW|RGT|20240405090000+0000||ADT^A31^ADT_A05|MSG00008|P|2.5`,
		`EVN||20240405085959+0000`,
		`PID|1||9434765919^^^NHS^NH||SMITH^JANE||19650412|F||||||||||||||B`,
		`PV1||N`,
	)
	msgA40v25 = join(
		`MSH|^~\&|EPR|RGT|PSGW|RGT|20240406100000+0000||ADT^A40^ADT_A39|MSG00009|P|2.5`,
		`EVN||20240406095959+0000`,
		`PID|1||9434765919^^^NHS^NH~RGT1234567^^^RGT^MR||SMITH^JANE||19650412|F`,
		`MRG|RGT7777777^^^RGT^MR~4010232137^^^NHS^NH`,
	)
	// Custom delimiters: field #, component !, repetition *, escape $,
	// subcomponent @.
	msgCustom = join(
		`MSH#!*$@#EPR#RGT#PSGW#RGT#20240407101500##ADT!A01#MSG00010#P#2.4`,
		`EVN#A01#20240407101400`,
		`PID#1##9434765870!!!NHS!NH*X99$F$1!!!RGT@2.16.840.1.113883@ISO!MR##SMITH$T$JONES!ANNA##19800101#F`,
		`PV1#1#I#WARD$S$1!BAY`,
	)
)

// allTriggers is one realistic message per supported trigger event.
var allTriggers = []struct {
	name string
	msg  []byte
}{
	{"A01 v2.3", msgA01v23},
	{"A02 v2.4", msgA02v24},
	{"A03 v2.5", msgA03v25},
	{"A04 v2.5", msgA04v25},
	{"A05 v2.3", msgA05v23},
	{"A08 v2.4 latin1", msgA08v24},
	{"A28 v2.5", msgA28v25},
	{"A31 v2.5", msgA31v25},
	{"A40 v2.5", msgA40v25},
	{"A01 custom delimiters", msgCustom},
}
