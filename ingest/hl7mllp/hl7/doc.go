// Package hl7 reads the HL7 v2 ADT messages that an EPR sends over MLLP and
// turns them into the patient demographics that psgw keeps.
//
// It has four parts, all pure (no network, no clock, no logging) so that the
// MLLP listener around them stays small:
//
//   - FrameReader and WriteFrame: MLLP framing with bounded memory and
//     resynchronisation after broken frames.
//   - Parse: an HL7 v2 (2.3 to 2.5, tolerant of later versions) parser that
//     indexes segments once and splits and unescapes fields only on access.
//   - BuildACK and BuildACKRaw: the acknowledgement for every frame.
//   - ExtractADT: the identifiers, date of birth, sex, ethnicity and location
//     that an ADT event carries.
//
// Messages carry patient data. Nothing in this package logs, and no error it
// returns contains a value taken from a message: errors name the segment, the
// field and the rule that was broken.
package hl7
